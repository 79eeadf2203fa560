import { afterEach, beforeEach, mock, test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_RETRY_MS, openTodoStream, streamUrl } from '../src/stream.js';

// A stand-in for the browser WebSocket: records every socket opened and lets
// the test play the server's side.
class FakeSocket {
  static opened = [];
  constructor(url) {
    this.url = url;
    this.readyState = 0;
    FakeSocket.opened.push(this);
  }
  serverOpens() {
    this.readyState = 1;
    this.onopen?.({});
  }
  serverSends(message) {
    this.onmessage?.({ data: JSON.stringify(message) });
  }
  serverCloses(code = 1006) {
    this.readyState = 3;
    this.onclose?.({ code });
  }
  close() {
    this.readyState = 3;
    this.closedByClient = true;
  }
}

const latest = () => FakeSocket.opened.at(-1);
const flushPromises = () => new Promise((resolve) => setImmediate(resolve));
const base = 'http://todo.example:8000/#/active';

let streams;
beforeEach(() => {
  FakeSocket.opened = [];
  streams = [];
  mock.timers.enable({ apis: ['setTimeout'] });
});
afterEach(() => {
  streams.forEach((s) => s.close());
  mock.timers.reset();
});

function open(overrides = {}) {
  const seen = { messages: [], statuses: [], sessionLost: 0 };
  const stream = openTodoStream({
    baseUrl: base,
    WebSocket: FakeSocket,
    onMessage: (m) => seen.messages.push(m),
    onStatus: (s) => seen.statuses.push(s),
    onSessionLost: () => (seen.sessionLost += 1),
    checkSession: async () => ({ user: {} }),
    random: () => 0.5, // no jitter: the delays below are exact
    ...overrides,
  });
  streams.push(stream);
  return { stream, seen };
}

// Plays a complete first sync on the current socket.
function syncFirst() {
  latest().serverOpens();
  latest().serverSends({ type: 'snapshot', todos: [], rev: 4 });
  latest().serverSends({ type: 'change', op: 'insert', todo: { id: 'x' }, rev: 6 });
  latest().serverSends({ type: 'ready', rev: 6 });
}

test('streamUrl: same origin, ws/wss by page scheme, optional since', () => {
  assert.equal(streamUrl('http://h:8000/x#/a'), 'ws://h:8000/api/todos/');
  assert.equal(streamUrl('https://h/', 42), 'wss://h/api/todos/?since=42');
  assert.equal(streamUrl('https://h/', 42, '/api/lists/L1/todos/'), 'wss://h/api/lists/L1/todos/?members=true&since=42');
  assert.equal(streamUrl('https://h/', null, '/api/lists/L1/todos/T1/'), 'wss://h/api/lists/L1/todos/T1/');
});

test('first connect has no since; status goes connecting → live on ready', () => {
  const { seen } = open();
  assert.equal(latest().url, 'ws://todo.example:8000/api/todos/');
  assert.deepEqual(seen.statuses, ['connecting']);
  syncFirst();
  assert.deepEqual(seen.statuses, ['connecting', 'live']);
  assert.deepEqual(
    seen.messages.map((m) => m.type),
    ['snapshot', 'change', 'ready'],
  );
});

test('after a drop it reconnects with since=<last rev>, emitting nothing that clears the list', () => {
  const { seen, stream } = open();
  syncFirst();
  const messagesBefore = seen.messages.length;
  latest().serverCloses(1006);
  assert.equal(seen.statuses.at(-1), 'reconnecting');
  assert.equal(seen.messages.length, messagesBefore, 'a drop emits no message (no empty snapshot)');
  assert.equal(FakeSocket.opened.length, 1, 'waits before retrying');
  mock.timers.tick(250);
  assert.equal(FakeSocket.opened.length, 2);
  assert.equal(latest().url, 'ws://todo.example:8000/api/todos/?since=6');
  assert.equal(stream.resumeRev, 6);
  latest().serverOpens();
  latest().serverSends({ type: 'ready', rev: 9 });
  assert.equal(seen.statuses.at(-1), 'live');
});

test('a 4008 (too slow) close also resumes with since', () => {
  open();
  syncFirst();
  latest().serverSends({ type: 'change', op: 'update', todo: { id: 'x' }, rev: 8 });
  latest().serverCloses(4008);
  mock.timers.tick(250);
  assert.equal(latest().url, 'ws://todo.example:8000/api/todos/?since=8');
});

test('a drop before any snapshot reconnects without since and stays "connecting"', () => {
  const { seen } = open();
  latest().serverOpens();
  latest().serverCloses(1011);
  mock.timers.tick(250);
  assert.equal(latest().url, 'ws://todo.example:8000/api/todos/');
  assert.deepEqual(seen.statuses, ['connecting']);
});

test('retries back off 250ms doubling up to the cap, and reset after a sync', async () => {
  open();
  const delays = [];
  for (let i = 0; i < 7; i += 1) {
    const count = FakeSocket.opened.length;
    latest().serverCloses(1006); // handshake fails: never opened
    await flushPromises(); // let the session check settle
    let waited = 0;
    while (FakeSocket.opened.length === count) {
      mock.timers.tick(50);
      waited += 50;
    }
    delays.push(waited);
  }
  assert.deepEqual(delays, [250, 500, 1000, 2000, 4000, MAX_RETRY_MS, MAX_RETRY_MS]);

  syncFirst(); // a successful sync resets the backoff
  latest().serverCloses(1006);
  mock.timers.tick(249);
  const before = FakeSocket.opened.length;
  mock.timers.tick(1);
  assert.equal(FakeSocket.opened.length, before + 1);
});

test('repeated failed handshakes + 401 from /api/session/ → session lost, no more retries', async () => {
  const checks = [];
  const { seen } = open({
    checkSession: async () => {
      checks.push(1);
      throw Object.assign(new Error('no session'), { status: 401 });
    },
  });
  syncFirst();
  latest().serverCloses(1006); // e.g. the session was revoked elsewhere
  mock.timers.tick(250);
  latest().serverCloses(1006); // the handshake is refused: 1st failure
  await flushPromises();
  assert.equal(checks.length, 0, 'a single failed handshake does not trigger a check');
  mock.timers.tick(500);
  latest().serverCloses(1006); // 2nd failure in a row
  await flushPromises();
  assert.equal(checks.length, 1);
  assert.equal(seen.sessionLost, 1);
  const count = FakeSocket.opened.length;
  mock.timers.tick(MAX_RETRY_MS * 4);
  assert.equal(FakeSocket.opened.length, count, 'stopped reconnecting');
});

test('failed handshakes while the server is down keep retrying (session check not 401)', async () => {
  const { seen } = open({
    checkSession: async () => {
      throw Object.assign(new Error('unreachable'), { status: 0 });
    },
  });
  latest().serverCloses(1006);
  mock.timers.tick(250);
  latest().serverCloses(1006);
  await flushPromises();
  mock.timers.tick(500);
  assert.equal(FakeSocket.opened.length, 3);
  assert.equal(seen.sessionLost, 0);
});

test('close() closes the socket and cancels pending retries', () => {
  const { stream } = open();
  syncFirst();
  const socket = latest();
  stream.close();
  assert.equal(socket.closedByClient, true);
  socket.serverCloses(1000); // the close event that follows
  mock.timers.tick(MAX_RETRY_MS * 2);
  assert.equal(FakeSocket.opened.length, 1);
});

test('frames that are not JSON objects are ignored', () => {
  const { seen } = open();
  latest().serverOpens();
  latest().onmessage({ data: 'not json' });
  latest().onmessage({ data: '42' });
  assert.equal(seen.messages.length, 0);
});

test('handshakes that keep failing while the session is fine: "unavailable", and still retrying', async () => {
  const { seen } = open();
  for (let i = 0; i < 3; i += 1) {
    const count = FakeSocket.opened.length;
    latest().serverCloses(1006); // never opened: a proxy dropping the upgrade
    await flushPromises();
    while (FakeSocket.opened.length === count) mock.timers.tick(50);
  }
  assert.equal(seen.statuses.at(-1), 'unavailable');
  assert.equal(seen.statuses.filter((s) => s === 'unavailable').length, 1);
  // Once the socket gets through, it is live again.
  syncFirst();
  assert.equal(seen.statuses.at(-1), 'live');
});

test('failed handshakes while the server is down are "reconnecting", never "unavailable"', async () => {
  const { seen } = open({
    checkSession: async () => {
      throw Object.assign(new Error('unreachable'), { status: 0 });
    },
  });
  syncFirst();
  for (let i = 0; i < 4; i += 1) {
    const count = FakeSocket.opened.length;
    latest().serverCloses(1006);
    await flushPromises();
    while (FakeSocket.opened.length === count) mock.timers.tick(50);
  }
  assert.ok(!seen.statuses.includes('unavailable'), seen.statuses.join());
  assert.equal(seen.statuses.at(-1), 'reconnecting');
});

for (const code of [4403, 4404]) {
  test(`close ${code}: the list is gone for us; told once, no reconnect`, () => {
    const gone = [];
    open({ onGone: (c) => gone.push(c), path: '/api/lists/l1/todos/' });
    assert.equal(latest().url, 'ws://todo.example:8000/api/lists/l1/todos/?members=true');
    syncFirst();
    const count = FakeSocket.opened.length;
    latest().serverCloses(code);
    mock.timers.tick(MAX_RETRY_MS * 4);
    assert.deepEqual(gone, [code]);
    assert.equal(FakeSocket.opened.length, count);
  });
}

test('close 1008 (signed out): session lost at once, no reconnect', () => {
  const { seen } = open();
  syncFirst();
  const count = FakeSocket.opened.length;
  latest().serverCloses(1008);
  mock.timers.tick(MAX_RETRY_MS * 4);
  assert.equal(seen.sessionLost, 1);
  assert.equal(FakeSocket.opened.length, count);
});

test('retries are spread by jitter (x0.5 to x1.5 of the backoff)', () => {
  open({ random: () => 0 });
  syncFirst();
  latest().serverCloses(1006);
  mock.timers.tick(124);
  assert.equal(FakeSocket.opened.length, 1, 'not before half the backoff');
  mock.timers.tick(1);
  assert.equal(FakeSocket.opened.length, 2, 'at half the backoff with the lowest draw');
});

test('send() writes a text frame only while the socket is open (the presence frame)', () => {
  const { stream } = open();
  const socket = latest();
  const sent = [];
  socket.send = (text) => sent.push(text);
  assert.equal(stream.send('early'), false);
  socket.serverOpens();
  assert.equal(stream.send('{"type":"presence","editing":null}'), true);
  socket.serverCloses(1006);
  assert.equal(stream.send('late'), false);
  assert.deepEqual(sent, ['{"type":"presence","editing":null}']);
});
