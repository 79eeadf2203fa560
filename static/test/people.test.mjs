import { test } from 'node:test';
import assert from 'node:assert/strict';
import { addPage, arrivals, describeChange, editors, emptyActivity, initials, others, presenceFrame } from '../src/people.js';

const users = [
  { username: 'alice', editing: null },
  { username: 'bob', editing: 't1' },
  { username: 'carol', editing: null },
];

test('the presence frame is exactly the one the server counts', () => {
  assert.equal(presenceFrame(null), '{"type":"presence","editing":null}');
  assert.equal(presenceFrame('t1'), '{"type":"presence","editing":"t1"}');
  assert.equal(presenceFrame(undefined), '{"type":"presence","editing":null}');
});

test('others leave out me; editors map the todo to whoever else edits it', () => {
  assert.deepEqual(others(users, 'alice').map((u) => u.username), ['bob', 'carol']);
  assert.deepEqual(others(undefined, 'alice'), []);
  assert.deepEqual([...editors(users, 'alice')], [['t1', 'bob']]);
  // My own edit is no marker for me.
  assert.deepEqual([...editors(users, 'bob')], []);
});

test('initials', () => {
  assert.equal(initials('bob'), 'B');
  assert.equal(initials('mary-ann'), 'MA');
  assert.equal(initials('élodie_x'), 'ÉX');
  assert.equal(initials('__'), '?');
});

test('arrivals say who came and who went, never me', () => {
  assert.equal(arrivals([users[0]], users, 'alice'), 'bob opened this list. carol opened this list');
  assert.equal(arrivals(users, [users[0], users[2]], 'alice'), 'bob left this list');
  assert.equal(arrivals(users, users, 'alice'), '');
  assert.equal(arrivals([], [users[0]], 'alice'), '');
});

const change = (rev, extra = {}) => ({ rev, by: 'bob', kind: 'todo', op: 'insert', todo: { title: `t${rev}` }, ...extra });

test('activity pages: newest first, older pages appended, next from the oldest page, no repeats', () => {
  let state = addPage(emptyActivity, { changes: [change(9), change(8)], next: 8 });
  assert.deepEqual(state.changes.map((c) => c.rev), [9, 8]);
  assert.equal(state.next, 8);
  state = addPage(state, { changes: [change(7), change(6)], next: 6 }, true);
  assert.deepEqual(state.changes.map((c) => c.rev), [9, 8, 7, 6]);
  assert.equal(state.next, 6);
  state = addPage(state, { changes: [change(5)], next: null }, true);
  assert.equal(state.next, null);
  // A refresh of the newest page keeps the older ones and where paging stopped.
  state = addPage(state, { changes: [change(10), change(9)], next: 9 });
  assert.deepEqual(state.changes.map((c) => c.rev), [10, 9, 8, 7, 6, 5]);
  assert.equal(state.next, null);
});

test('activity entries as sentences', () => {
  assert.equal(describeChange(change(1)), 'bob added “t1”');
  assert.equal(describeChange(change(1, { op: 'delete' })), 'bob deleted “t1”');
  assert.equal(describeChange(change(1, { op: 'update', todo: { title: 'x', completed: true } })), 'bob changed “x” (completed)');
  assert.equal(describeChange({ kind: 'list', op: 'update', by: null, list: { title: 'G' } }), 'Someone renamed the list to “G”');
  const member = (role, op = 'insert', by = 'alice') => ({ kind: 'member', op, by, member: { username: 'finn', role } });
  assert.equal(describeChange(member('editor')), 'alice added finn as an editor');
  assert.equal(describeChange(member('viewer', 'update')), 'alice made finn a viewer');
  assert.equal(describeChange(member(null, 'delete')), 'alice removed finn');
  assert.equal(describeChange(member(null, 'delete', 'finn')), 'finn left');
  assert.equal(describeChange({ kind: 'member', op: 'insert', by: 'erin', member: { username: 'erin', role: 'owner' } }),
    'erin created the list');
  // A stream's `member` message reads the same.
  assert.equal(describeChange({ type: 'member', op: 'insert', by: 'alice', member: { username: 'finn', role: 'viewer' } }),
    'alice added finn as a viewer');
});
