// Thin fetch wrappers for the REST API in docs/api.md. Every call resolves with the
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

const ifMatch = (rev) => (rev == null ? {} : { 'If-Match': `"${rev}"` });
// The outbox's key for one write: a retry of it is performed at most once (docs/api.md).
const keyed = (key) => (key ? { 'Idempotency-Key': key } : {});

// ---- accounts and sessions ----

export const getSession = () => request('GET', '/api/session/');
export const signIn = (username, password) => request('POST', '/api/session/', { body: { username, password } });
export const signUp = (username, password) => request('POST', '/api/users/', { body: { username, password } });
export const signOut = () => request('DELETE', '/api/session/');

// ---- todos ----
// `base` is a list's todo collection: '/api/todos/' (the personal list) or
// '/api/lists/<lid>/todos/'. Every route works the same under either.

export const PERSONAL_TODOS = '/api/todos/';
export const listTodosPath = (listId) =>
  listId == null ? PERSONAL_TODOS : `/api/lists/${encodeURIComponent(listId)}/todos/`;
const todoPath = (base, id) => `${base}${encodeURIComponent(id)}/`;

/** POST with a client-chosen id, so that sending it again is harmless (200, same todo). */
export const createTodo = (title, { id, completed, base = PERSONAL_TODOS, key } = {}) =>
  request('POST', base, { body: { title, ...(id ? { id } : {}), ...(completed ? { completed } : {}) }, headers: keyed(key) });
export const getTodo = (id, { base = PERSONAL_TODOS } = {}) => request('GET', todoPath(base, id));
export const listTodos = ({ base = PERSONAL_TODOS } = {}) => request('GET', base);

/** PATCH one todo; pass `rev` to make it conditional (412 if changed since). */
export const updateTodo = (id, fields, { rev, base = PERSONAL_TODOS, key } = {}) =>
  request('PATCH', todoPath(base, id), { body: fields, headers: { ...ifMatch(rev), ...keyed(key) } });

export const deleteTodo = (id, { rev, base = PERSONAL_TODOS, key } = {}) =>
  request('DELETE', todoPath(base, id), { headers: { ...ifMatch(rev), ...keyed(key) } });

/** Toggle all in one atomic request. */
export const setAllCompleted = (completed, { base = PERSONAL_TODOS, key } = {}) =>
  request('PATCH', base, { body: { completed }, headers: keyed(key) });

/** Clear completed in one atomic request. */
export const clearCompleted = ({ base = PERSONAL_TODOS, key } = {}) =>
  request('DELETE', `${base}?completed=true`, { headers: keyed(key) });

// ---- lists and sharing ----

const listPath = (listId) => `/api/lists/${encodeURIComponent(listId)}/`;
const memberPath = (listId, username) => `${listPath(listId)}members/${encodeURIComponent(username)}/`;

export const getLists = () => request('GET', '/api/lists/');
export const createList = (title, { id } = {}) =>
  request('POST', '/api/lists/', { body: { title, ...(id ? { id } : {}) } });
export const getList = (listId) => request('GET', listPath(listId));
export const renameList = (listId, title) => request('PATCH', listPath(listId), { body: { title } });
export const deleteList = (listId) => request('DELETE', listPath(listId));
export const getMembers = (listId) => request('GET', `${listPath(listId)}members/`);
export const putMember = (listId, username, role) => request('PUT', memberPath(listId, username), { body: { role } });
export const removeMember = (listId, username) => request('DELETE', memberPath(listId, username));
/** One page of a list's activity, newest first; `before`: the previous page's `next`. */
export const ACTIVITY_PAGE = 20;
export const getActivity = (listId, before = null) =>
  request('GET', `${listPath(listId)}activity/?limit=${ACTIVITY_PAGE}${before == null ? '' : `&before=${before}`}`);

/**
 * The text for a failed sign-in or sign-up: the server's own message, plus the
 * wait for a throttled (429) one, said once (the server's message may already
 * name it: "try again in 60 s").
 */
export function describeAuthError(error) {
  if (error.status === 429 && error.retryAfter != null) {
    const sentence = error.message.replace(/[.!]?\s*$/, '.');
    if (/try again/i.test(sentence)) return sentence;
    return `${sentence} Try again in ${error.retryAfter} s.`;
  }
  return error.message;
}
