import { test } from 'node:test';
import assert from 'node:assert/strict';
import { exclusive, leaseLock } from '../src/locks.js';

function fakeStorage() {
  const data = new Map();
  return {
    getItem: (k) => (data.has(k) ? data.get(k) : null),
    setItem: (k, v) => data.set(k, String(v)),
    removeItem: (k) => data.delete(k),
    data,
  };
}

test('the Web Locks API is used when the browser has it', async () => {
  const asked = [];
  const locks = { request: (name, fn) => (asked.push(name), fn()) };
  const result = await exclusive('outbox-1', { locks })(async () => 7);
  assert.equal(result, 7);
  assert.deepEqual(asked, ['outbox-1']);
});

test('without Web Locks, a lease lets one tab in at a time and is let go after (30 rounds)', async () => {
  for (let round = 0; round < 30; round += 1) await oneRound();
});

async function oneRound() {
  const storage = fakeStorage();
  const a = leaseLock('l', storage, { me: 'a', sleep: (ms) => new Promise((r) => setTimeout(r, ms / 20)) });
  const b = leaseLock('l', storage, { me: 'b', sleep: (ms) => new Promise((r) => setTimeout(r, ms / 20)) });
  const log = [];
  const hold = (who) => async () => {
    log.push(`${who} in`);
    await new Promise((r) => setTimeout(r, 30));
    log.push(`${who} out`);
  };
  await Promise.all([a(hold('a')), b(hold('b'))]);
  assert.equal(log.length, 4);
  assert.ok(log[1].endsWith('out') && log[0].split(' ')[0] === log[1].split(' ')[0], log.join(', '));
  assert.equal(storage.data.size, 0, 'the lease is removed when done');
}

test('an expired lease (a tab that died holding it) is taken over', async () => {
  const storage = fakeStorage();
  storage.setItem('l', JSON.stringify({ me: 'dead', until: Date.now() - 1 }));
  const lock = leaseLock('l', storage, { me: 'live', sleep: () => Promise.resolve() });
  assert.equal(await lock(async () => 'ran'), 'ran');
});
