// Thin fetch wrappers for the REST API in API.md. Every call resolves with the
// parsed JSON body (or null for 204) and rejects with an ApiError.
// Browsers authenticate with the HttpOnly session cookie, so there is no token
// handling here; same-origin requests carry the Origin the server checks.

export class ApiError extends Error {
  /**
   * @param {number} status  HTTP status, or 0 when the server was not reached
   * @param {string} code    the server's error slug, or a local one
   * @param {string} message human-readable text, shown to the user as is
   * @param {number|null} retryAfter seconds to wait (429 only)
   */
  constructor(status, code, message, retryAfter = null) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

async function request(method, path, { body, headers = {} } = {}) {
  const init = { method, credentials: 'same-origin', headers: { Accept: 'application/json', ...headers } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new ApiError(0, 'network_error', 'Could not reach the server.');
  }
  const payload = await readJson(response);
  if (response.ok) return payload;
  throw toApiError(response, payload);
}

async function readJson(response) {
  if (response.status === 204) return null;
  const text = await response.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return null; // e.g. an HTML error page from a proxy; toApiError copes
  }
}

function toApiError(response, payload) {
  const { code, message } = payload?.error ?? {};
  const retryAfter = response.status === 429 ? parseRetryAfter(response.headers.get('Retry-After')) : null;
  return new ApiError(
    response.status,
    code ?? `http_${response.status}`,
    message ?? `The server answered ${response.status} ${response.statusText}`.trim() + '.',
    retryAfter,
  );
}

/** Retry-After is either delay-seconds or an HTTP date; return whole seconds. */
export function parseRetryAfter(value) {
  if (value == null || value === '') return null;
  if (/^\s*\d+\s*$/.test(value)) return Number(value);
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : Math.max(0, Math.ceil((at - Date.now()) / 1000));
}

const todoPath = (id) => `/api/todos/${encodeURIComponent(id)}/`;
const ifMatch = (rev) => (rev == null ? {} : { 'If-Match': `"${rev}"` });

// ---- accounts and sessions ----

export const getSession = () => request('GET', '/api/session/');
export const signIn = (username, password) => request('POST', '/api/session/', { body: { username, password } });
export const signUp = (username, password) => request('POST', '/api/users/', { body: { username, password } });
export const signOut = () => request('DELETE', '/api/session/');

// ---- todos ----

export const createTodo = (title) => request('POST', '/api/todos/', { body: { title } });
export const getTodo = (id) => request('GET', todoPath(id));

/** PATCH one todo; pass `rev` to make it conditional (412 if changed since). */
export const updateTodo = (id, fields, { rev } = {}) =>
  request('PATCH', todoPath(id), { body: fields, headers: ifMatch(rev) });

export const deleteTodo = (id, { rev } = {}) => request('DELETE', todoPath(id), { headers: ifMatch(rev) });

/** Toggle all in one atomic request. */
export const setAllCompleted = (completed) => request('PATCH', '/api/todos/', { body: { completed } });

/** Clear completed in one atomic request. */
export const clearCompleted = () => request('DELETE', '/api/todos/?completed=true');
