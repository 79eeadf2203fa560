import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import * as api from '../src/api.js';

const realFetch = globalThis.fetch;
afterEach(() => {
  globalThis.fetch = realFetch;
});

// Replace fetch with one answering `response` and recording each call.
function answer(status, body, headers = {}) {
  const calls = [];
  globalThis.fetch = async (url, init) => {
    calls.push({ url, init });
    const text = body === undefined ? null : typeof body === 'string' ? body : JSON.stringify(body);
    return new Response(text, { status, headers: { 'Content-Type': 'application/json', ...headers } });
  };
  return calls;
}

test('JSON body, content type and same-origin credentials', async () => {
  const calls = answer(201, { id: 't1', title: 'milk', completed: false, rev: 3 });
  const created = await api.createTodo('milk');
  assert.equal(created.id, 't1');
  const [{ url, init }] = calls;
  assert.equal(url, '/api/todos/');
  assert.equal(init.method, 'POST');
  assert.equal(init.credentials, 'same-origin');
  assert.equal(init.headers['Content-Type'], 'application/json');
  assert.deepEqual(JSON.parse(init.body), { title: 'milk' });
});

test('conditional title edit sends If-Match with the quoted rev', async () => {
  const calls = answer(200, { id: 't1', title: 'new', rev: 9 });
  await api.updateTodo('t1', { title: 'new' }, { rev: 7 });
  assert.equal(calls[0].url, '/api/todos/t1/');
  assert.equal(calls[0].init.method, 'PATCH');
  assert.equal(calls[0].init.headers['If-Match'], '"7"');
});

test('bulk routes: one PATCH to toggle all, one DELETE to clear completed', async () => {
  const calls = answer(200, { todos: [], rev: 1 });
  await api.setAllCompleted(true);
  await api.clearCompleted();
  assert.deepEqual(
    calls.map((c) => [c.init.method, c.url]),
    [
      ['PATCH', '/api/todos/'],
      ['DELETE', '/api/todos/?completed=true'],
    ],
  );
  assert.deepEqual(JSON.parse(calls[0].init.body), { completed: true });
  assert.equal(calls[1].init.body, undefined, 'no body, so no content type either');
  assert.equal(calls[1].init.headers['Content-Type'], undefined);
});

test('204 resolves with null', async () => {
  answer(204);
  assert.equal(await api.deleteTodo('t1'), null);
});

test('errors carry status, code and the server message', async () => {
  answer(409, { error: { code: 'username_taken', message: 'That username is taken.' } });
  await assert.rejects(api.signUp('ann', 'password1'), (error) => {
    assert.ok(error instanceof api.ApiError);
    assert.equal(error.status, 409);
    assert.equal(error.code, 'username_taken');
    assert.equal(error.message, 'That username is taken.');
    assert.equal(error.retryAfter, null);
    return true;
  });
});

test('429 exposes Retry-After in seconds', async () => {
  answer(429, { error: { code: 'too_many_attempts', message: 'Too many failed sign-ins.' } }, { 'Retry-After': '30' });
  await assert.rejects(api.signIn('ann', 'wrong-pass'), (error) => error.status === 429 && error.retryAfter === 30);
});

test('Retry-After as an HTTP date becomes seconds from now', () => {
  const inTenSeconds = new Date(Date.now() + 10_000).toUTCString();
  const seconds = api.parseRetryAfter(inTenSeconds);
  assert.ok(seconds >= 9 && seconds <= 10, `got ${seconds}`);
  assert.equal(api.parseRetryAfter(null), null);
  assert.equal(api.parseRetryAfter('soon'), null);
});

test('a non-JSON error page still yields an ApiError', async () => {
  answer(502, '<html>Bad Gateway</html>', { 'Content-Type': 'text/html' });
  await assert.rejects(api.getSession(), (error) => error.status === 502 && error.code === 'http_502');
});

test('a network failure is status 0', async () => {
  globalThis.fetch = async () => {
    throw new TypeError('Failed to fetch');
  };
  await assert.rejects(api.getSession(), (error) => error.status === 0 && error.code === 'network_error');
});
