import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Outbox, memoryStorage, resolvePrecondition, isTransient } from '../src/outbox.js';

const flush = () => new Promise((resolve) => setImmediate(resolve));
const offline = Object.assign(new Error('offline'), { status: 0 });
const refused = (status, code = 'x') => Object.assign(new Error(code), { status, code });

// A send that answers from a script of outcomes, recording what was sent.
function scripted(...outcomes) {
  const sent = [];
  const send = async (op) => {
    sent.push(op);
    const next = outcomes.length ? outcomes.shift() : { reply: { id: op.id } };
    if (next instanceof Error) throw next;
    return typeof next === 'function' ? next(op) : next;
  };
  return { sent, send };
}

function manualTimers() {
  const pending = new Set();
  return {
    setTimer: (fn) => {
      const t = { fn };
      pending.add(t);
      return t;
    },
    clearTimer: (t) => pending.delete(t),
    fire() {
      const all = [...pending];
      pending.clear();
      all.forEach((t) => t.fn());
    },
    get count() {
      return pending.size;
    },
  };
}

test('writes are sent one at a time, in the order they were made', async () => {
  let release;
  const order = [];
  const outbox = new Outbox({
    send: async (op) => {
      order.push(`start ${op.id}`);
      if (op.id === 'a') await new Promise((r) => (release = r));
      order.push(`end ${op.id}`);
      return { reply: null };
    },
  });
  outbox.enqueue({ kind: 'update', id: 'a', fields: { completed: true } });
  outbox.enqueue({ kind: 'update', id: 'b', fields: { completed: true } });
  await flush();
  assert.deepEqual(order, ['start a'], 'b waits for a');
  release();
  await flush();
  assert.deepEqual(order, ['start a', 'end a', 'start b', 'end b']);
  assert.equal(outbox.ops.length, 0);
});

test('a write stays pending while offline and goes out once when back online', async () => {
  let online = false;
  const { sent, send } = scripted();
  const storage = memoryStorage();
  const outbox = new Outbox({ send, storage, isOnline: () => online });
  outbox.enqueue({ kind: 'create', todo: { id: 't1', title: 'milk' } });
  await flush();
  assert.equal(sent.length, 0, 'nothing is tried while the browser says offline');
  assert.equal(outbox.waiting, true);
  assert.equal(storage.rows.size, 1, 'kept in storage');
  online = true;
  outbox.kick();
  outbox.kick(); // a second trigger (stream live + online event) must not send twice
  await flush();
  assert.equal(sent.length, 1);
  assert.equal(outbox.ops.length, 0);
  assert.equal(storage.rows.size, 0, 'forgotten once answered');
});

test('a write the server did not answer is retried after a delay, not dropped', async () => {
  const timers = manualTimers();
  const { sent, send } = scripted(offline, refused(503), { reply: { id: 't1' } });
  const settled = [];
  const outbox = new Outbox({ send, ...timers, onSettled: (op, outcome) => settled.push(outcome) });
  outbox.enqueue({ kind: 'create', todo: { id: 't1', title: 'milk' } });
  await flush();
  assert.equal(sent.length, 1);
  assert.equal(outbox.waiting, true);
  assert.equal(timers.count, 1);
  timers.fire();
  await flush();
  assert.equal(sent.length, 2);
  timers.fire();
  await flush();
  assert.equal(sent.length, 3);
  assert.deepEqual(settled, [{ reply: { id: 't1' } }]);
  assert.equal(outbox.waiting, false);
});

test('a refused write is dropped and reported; the next one still goes', async () => {
  const { sent, send } = scripted(refused(422, 'invalid'), { reply: { id: 'b' } });
  const settled = [];
  const outbox = new Outbox({ send, onSettled: (op, outcome) => settled.push([op.id, outcome.error?.status ?? 'ok']) });
  outbox.enqueue({ kind: 'update', id: 'a', fields: { title: 'x'.repeat(600) } });
  outbox.enqueue({ kind: 'update', id: 'b', fields: { completed: true } });
  await flush();
  await flush();
  assert.deepEqual(settled, [['a', 422], ['b', 'ok']]);
  assert.equal(sent.length, 2);
});

test('ops left by an earlier page are loaded and replayed first, in their order', async () => {
  const storage = memoryStorage([
    { seq: 2, kind: 'update', id: 'second', fields: { completed: true } },
    { seq: 1, kind: 'create', todo: { id: 'first', title: 'a' } },
  ]);
  const { sent, send } = scripted();
  const outbox = new Outbox({ send, storage });
  await outbox.load();
  outbox.enqueue({ kind: 'delete', id: 'third' });
  await flush();
  await flush();
  assert.deepEqual(sent.map((op) => op.id ?? op.todo.id), ['first', 'second', 'third']);
  assert.ok(sent[2].seq > sent[1].seq);
});

test('a silent 412 retry replaces the op and is sent against the new base', async () => {
  const { sent, send } = scripted(
    (op) => ({ retry: { ...op, base: { title: 'old', completed: true, rev: 9 } } }),
    (op) => ({ reply: { id: op.id, title: 'new', rev: 10 } }),
  );
  const settled = [];
  const outbox = new Outbox({ send, onSettled: (op, outcome) => settled.push(outcome) });
  outbox.enqueue({ kind: 'update', id: 't', fields: { title: 'new' }, base: { title: 'old', completed: false, rev: 5 } });
  await flush();
  assert.deepEqual(sent.map((op) => op.base.rev), [5, 9]);
  assert.equal(settled[0].reply.title, 'new');
});

test('412 retries are bounded: a todo that keeps changing ends as a conflict', async () => {
  const again = (op) => ({ retry: { ...op } });
  const { sent, send } = scripted(again, again, again, again, again);
  const settled = [];
  const outbox = new Outbox({ send, onSettled: (op, outcome) => settled.push(outcome) });
  outbox.enqueue({ kind: 'update', id: 't', fields: { title: 'x' }, base: { title: 'o', rev: 1 } });
  await flush();
  assert.equal(sent.length, 4);
  assert.deepEqual(settled, [{ conflict: true }]);
});

test('a later guarded edit of the same todo is rebased onto our own earlier write', async () => {
  const { sent, send } = scripted({ reply: { id: 't', title: 'B', completed: false, rev: 8 } });
  const outbox = new Outbox({ send });
  // Edit A→B, then (before the first answer) B→C: the second saw "B" at rev 7.
  outbox.enqueue({ kind: 'update', id: 't', fields: { title: 'B' }, base: { title: 'A', completed: false, rev: 7 } });
  outbox.enqueue({ kind: 'update', id: 't', fields: { title: 'C' }, base: { title: 'B', completed: false, rev: 7 } });
  await flush();
  await flush();
  assert.equal(sent[1].base.rev, 8, 'If-Match the rev our first write made, not a false conflict');
});

test('resolvePrecondition: a toggle elsewhere does not block a title edit', () => {
  const op = { kind: 'update', id: 't', fields: { title: 'mine' }, base: { title: 'old', completed: false, rev: 3 } };
  const decision = resolvePrecondition(op, { id: 't', title: 'old', completed: true, rev: 4 });
  assert.deepEqual(decision, { retry: { ...op, base: { title: 'old', completed: true, rev: 4 } } });
});

test('resolvePrecondition: a rename elsewhere is a real conflict', () => {
  const op = { kind: 'update', id: 't', fields: { title: 'mine' }, base: { title: 'old', completed: false, rev: 3 } };
  assert.deepEqual(resolvePrecondition(op, { id: 't', title: 'theirs', completed: false, rev: 4 }), { conflict: true });
});

test('resolvePrecondition: the same change made elsewhere is simply done', () => {
  const op = { kind: 'update', id: 't', fields: { title: 'same' }, base: { title: 'old', completed: false, rev: 3 } };
  assert.deepEqual(resolvePrecondition(op, { id: 't', title: 'same', completed: true, rev: 4 }), { done: true });
});

test('resolvePrecondition: a guarded delete (emptied title) survives a toggle, not a rename', () => {
  const op = { kind: 'delete', id: 't', base: { title: 'old', completed: false, rev: 3 } };
  assert.ok(resolvePrecondition(op, { id: 't', title: 'old', completed: true, rev: 4 }).retry);
  assert.deepEqual(resolvePrecondition(op, { id: 't', title: 'new', completed: false, rev: 4 }), { conflict: true });
});

test('transient failures are the ones that say nothing about the write', () => {
  for (const status of [0, 408, 429, 502, 503, 504]) assert.equal(isTransient({ status }), true, status);
  for (const status of [400, 401, 403, 404, 409, 412, 422, 500]) assert.equal(isTransient({ status }), false, status);
});

test('a write made while older ones are still being read from storage waits behind them', async () => {
  let release;
  const gate = new Promise((r) => (release = r));
  const memory = memoryStorage([{ seq: 1, kind: 'create', todo: { id: 'older', title: 'a' } }]);
  const storage = { ...memory, load: () => gate.then(memory.load) };
  const { sent, send } = scripted();
  const outbox = new Outbox({ send, storage });
  const loaded = outbox.load();
  outbox.enqueue({ kind: 'create', todo: { id: 'newer', title: 'b' } });
  await flush();
  assert.equal(sent.length, 0, 'held until the stored writes are known');
  release();
  await loaded;
  await flush();
  await flush();
  assert.deepEqual(sent.map((op) => op.todo.id), ['older', 'newer']);
});

// ---- idempotency keys and several tabs (issue 20, item 3) ----

test('every op carries its own Idempotency-Key, the same on every attempt', async () => {
  const timers = manualTimers();
  const { sent, send } = scripted(offline, offline);
  const outbox = new Outbox({ send, ...timers });
  outbox.enqueue({ kind: 'clearCompleted' });
  outbox.enqueue({ kind: 'toggleAll', completed: true });
  await flush();
  timers.fire();
  await flush();
  timers.fire();
  await flush();
  await flush();
  assert.equal(sent.length, 4);
  const [a1, a2, a3, b] = sent;
  assert.match(a1.key, /^[0-9a-f-]{36}$/);
  assert.equal(a2.key, a1.key, 'a retry is the same request: the same key');
  assert.equal(a3.key, a1.key);
  assert.notEqual(b.key, a1.key, 'another write: another key');
});

test('a 412 replacement is another request, sent with another key', async () => {
  const base = { title: 'a', completed: false, rev: 1 };
  const { sent, send } = scripted((op) => ({ retry: { ...op, base: { ...base, rev: 2 } } }), { reply: null });
  const outbox = new Outbox({ send });
  outbox.enqueue({ kind: 'update', id: 't', fields: { title: 'b' }, base });
  await flush();
  await flush();
  assert.equal(sent.length, 2);
  assert.notEqual(sent[1].key, sent[0].key);
  assert.equal(sent[1].base.rev, 2);
});

// Two tabs: two outboxes over one storage, one lock between them.
function sharedLock() {
  let tail = Promise.resolve();
  return (fn) => {
    const run = tail.then(fn);
    tail = run.catch(() => {});
    return run;
  };
}

test('two tabs sharing an outbox send each write once, in order, whichever made it', async () => {
  const storage = memoryStorage();
  const lock = sharedLock();
  const timers = manualTimers();
  // The server performs a key's request once (docs/api.md, Idempotency-Key).
  const performed = [];
  const keys = new Set();
  // Tab A's answers are lost (the write is performed, A hears 503) until its network heals.
  let aHealed = false;
  const perform = (op) => {
    if (!keys.has(op.key)) performed.push(op.kind === 'update' ? `${op.kind} ${op.id}` : op.kind);
    keys.add(op.key);
    return { reply: null };
  };
  const tabA = new Outbox({ storage, lock, ...timers, send: async (op) => {
    perform(op);
    if (!aHealed) throw Object.assign(new Error('503'), { status: 503 });
    return { reply: null };
  } });
  const tabB = new Outbox({ storage, lock, send: async (op) => perform(op) });
  tabA.onStored = () => tabB.refresh();
  tabB.onStored = () => tabA.refresh();

  tabA.enqueue({ kind: 'update', id: 'X', fields: { completed: true } });
  await flush();
  tabA.enqueue({ kind: 'clearCompleted' });
  // B (opened meanwhile) sends A's queue, then its own write.
  await tabB.load();
  for (let i = 0; i < 10; i += 1) await flush();
  tabB.enqueue({ kind: 'update', id: 'Y', fields: { completed: true } });
  for (let i = 0; i < 10; i += 1) await flush();
  assert.deepEqual(performed, ['update X', 'clearCompleted', 'update Y']);
  // A's retry comes: everything was sent; nothing goes twice.
  aHealed = true;
  timers.fire();
  for (let i = 0; i < 10; i += 1) await flush();
  assert.deepEqual(performed, ['update X', 'clearCompleted', 'update Y'], 'Y was never cleared');
  assert.equal(tabA.ops.length, 0);
  assert.equal(tabB.ops.length, 0);
  assert.equal(storage.rows.size, 0);
});

test('an op not yet stored survives another tab re-reading the storage', async () => {
  const memory = memoryStorage();
  let release;
  const storage = { ...memory, put: (op) => new Promise((r) => (release = r)).then(() => memory.put(op)) };
  const outbox = new Outbox({ storage, isOnline: () => false });
  outbox.enqueue({ kind: 'clearCompleted' });
  await outbox.refresh();
  assert.equal(outbox.ops.length, 1);
  release();
});

test('a 429 (slow_down) keeps the write and waits at least its Retry-After', async () => {
  const delays = [];
  const timers = manualTimers();
  const slowDown = Object.assign(new Error('slow down'), { status: 429, retryAfter: 7 });
  const { sent, send } = scripted(slowDown);
  const outbox = new Outbox({ send, ...timers, setTimer: (fn, ms) => (delays.push(ms), timers.setTimer(fn)) });
  outbox.enqueue({ kind: 'clearCompleted' });
  await flush();
  await flush();
  assert.deepEqual(delays, [7000]);
  assert.equal(outbox.ops.length, 1, 'kept, not refused');
  timers.fire();
  await flush();
  await flush();
  assert.equal(sent.length, 2);
  assert.equal(outbox.ops.length, 0);
});

test('a tab waiting for the lock follows the sending tab’s progress', async () => {
  const storage = memoryStorage();
  const lock = sharedLock();
  let release;
  const gate = new Promise((r) => (release = r));
  const tabA = new Outbox({ storage, lock, send: async () => { await gate; return { reply: null }; } });
  const tabB = new Outbox({ storage, lock, send: async () => ({ reply: null }) });
  tabA.onStored = () => tabB.refresh();
  tabB.onStored = () => tabA.refresh();
  tabA.enqueue({ kind: 'clearCompleted' });
  for (let i = 0; i < 5; i += 1) await flush();
  tabB.enqueue({ kind: 'toggleAll', completed: true }); // B now waits for the lock A holds
  for (let i = 0; i < 5; i += 1) await flush();
  assert.equal(tabB.sending, true);
  await tabB.refresh();
  assert.equal(tabB.ops.length, 2, 'both writes, as stored');
  release();
  for (let i = 0; i < 15; i += 1) await flush();
  assert.equal(tabA.ops.length, 0);
  assert.equal(tabB.ops.length, 0);
  assert.equal(storage.rows.size, 0);
});

test('two tabs queueing in the same millisecond take different stored keys', () => {
  // The low digits are random: a clash needs the same millisecond and the same draw (1 in 1,000).
  const realNow = Date.now;
  const realRandom = Math.random;
  const draws = [0.1, 0.2, 0.3, 0.4];
  Date.now = () => 1_765_000_000_000;
  Math.random = () => draws.shift();
  try {
    const storage = memoryStorage();
    const [a, b] = [0, 1].map(() => new Outbox({ storage, isOnline: () => false }));
    const seqs = [a.enqueue({ kind: 'clearCompleted' }), b.enqueue({ kind: 'clearCompleted' }),
      a.enqueue({ kind: 'clearCompleted' }), b.enqueue({ kind: 'clearCompleted' })].map((op) => op.seq);
    assert.equal(new Set(seqs).size, 4, String(seqs));
    assert.ok(seqs[2] > seqs[0] && seqs[3] > seqs[1], 'each tab’s own writes stay in order');
  } finally {
    Date.now = realNow;
    Math.random = realRandom;
  }
});
