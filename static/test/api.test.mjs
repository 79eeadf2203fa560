import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as api from '../src/api.js';

// The server's real replies, recorded by tests/test_frontend_fixtures.py
// (which fails when the server stops answering like this).
const SERVER = JSON.parse(readFileSync(new URL('./fixtures/server-replies.json', import.meta.url), 'utf8'));
const replay = (name) => {
  const { status, body, headers = {} } = SERVER[name];
  return answer(status, body, headers);
};

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
  replay('sign_up_taken');
  await assert.rejects(api.signUp('ann', 'password1'), (error) => {
    assert.ok(error instanceof api.ApiError);
    assert.equal(error.status, 409);
    assert.equal(error.code, 'username_taken');
    assert.equal(error.message, SERVER.sign_up_taken.body.error.message);
    assert.equal(error.retryAfter, null);
    return true;
  });
});

test('429 exposes Retry-After in seconds, and the wait is said once', async () => {
  replay('sign_in_throttled');
  const wait = Number(SERVER.sign_in_throttled.headers['Retry-After']);
  await assert.rejects(api.signIn('ann', 'wrong-pass'), (error) => {
    assert.equal(error.status, 429);
    assert.equal(error.code, 'too_many_requests');
    assert.equal(error.retryAfter, wait);
    const text = api.describeAuthError(error);
    assert.equal(text.match(/try again/gi).length, 1, text);
    assert.match(text, new RegExp(`try again in ${wait} s\\.$`, 'i'));
    return true;
  });
});

test('a 429 whose message does not name the wait gets it appended', () => {
  const error = new api.ApiError(429, 'too_many_requests', 'slow down', 12);
  assert.equal(api.describeAuthError(error), 'slow down. Try again in 12 s.');
});

test('the other recorded failures map to ApiErrors with the server\'s codes', async () => {
  const cases = {
    sign_in_wrong_password: () => api.signIn('ann', 'wrong-pass'),
    session_missing: () => api.getSession(),
    update_precondition_failed: () => api.updateTodo('t', { title: 'x' }, { rev: 1 }),
    update_title_too_long: () => api.updateTodo('t', { title: 'x'.repeat(513) }),
    todo_missing: () => api.getTodo('t'),
    create_id_taken: () => api.createTodo('x', { id: 't' }),
    viewer_writes: () => api.createTodo('x', { base: '/api/lists/l/todos/' }),
    member_unknown: () => api.putMember('l', 'nobody', 'editor'),
    owner_leaves: () => api.removeMember('l', 'me'),
  };
  for (const [name, call] of Object.entries(cases)) {
    replay(name);
    const { status, body } = SERVER[name];
    await assert.rejects(call(), (error) => {
      assert.equal(error.status, status, name);
      assert.equal(error.code, body.error.code, name);
      assert.equal(error.message, body.error.message, name);
      return true;
    });
  }
});

test('a repeated create with the same client id is a 200 with the todo, not an error', async () => {
  const calls = replay('create_id_repeated');
  const todo = await api.createTodo('again', { id: SERVER.create_id_repeated.body.id });
  assert.equal(todo.id, SERVER.create_id_repeated.body.id);
  assert.deepEqual(JSON.parse(calls[0].init.body), { title: 'again', id: todo.id });
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
