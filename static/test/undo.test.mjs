import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describeAction, undoOps } from '../src/undo.js';

const todo = (id, title, completed = false, rev = 1) => ({ id, title, completed, rev, created_time: `2026-01-0${rev}T00:00:00Z` });

test('a deleted todo comes back with its own id, title, state and place', () => {
  const gone = todo('a', 'milk', true, 3);
  const { ops, skipped } = undoOps({ kind: 'delete', todos: [gone] }, [todo('b', 'bread')]);
  assert.equal(skipped, 0);
  assert.deepEqual(ops, [{ kind: 'create', todo: { id: 'a', title: 'milk', completed: true, created_time: gone.created_time } }]);
});

test('clear completed is undone todo by todo; one already back is not created twice', () => {
  const cleared = [todo('a', 'one', true), todo('b', 'two', true)];
  const { ops } = undoOps({ kind: 'delete', todos: cleared }, [todo('b', 'two', true)]);
  assert.deepEqual(ops.map((op) => op.todo.id), ['a']);
});

test('toggle all is undone with guarded writes; a todo changed since is left alone and counted', () => {
  const action = { kind: 'toggle', completed: true, was: [{ id: 'a', completed: false }, { id: 'b', completed: false }, { id: 'c', completed: false }] };
  const now = [todo('a', 'one', true, 5), todo('b', 'two', false, 6)]; // b: unticked elsewhere; c: deleted
  const { ops, skipped } = undoOps(action, now);
  assert.equal(skipped, 1);
  assert.deepEqual(ops, [{ kind: 'update', id: 'a', fields: { completed: false }, base: { title: 'one', completed: true, rev: 5 } }]);
});

test('a title edit is undone against the title it set, never over a newer one', () => {
  const action = { kind: 'title', id: 'a', from: 'old', to: 'new' };
  const undone = undoOps(action, [todo('a', 'new', false, 4)]);
  assert.deepEqual(undone.ops, [{ kind: 'update', id: 'a', fields: { title: 'old' }, base: { title: 'new', completed: false, rev: 4 } }]);
  const later = undoOps(action, [todo('a', 'someone else’s', false, 5)]);
  assert.deepEqual(later, { ops: [], skipped: 1 });
});

test('each action says what it did', () => {
  assert.equal(describeAction({ kind: 'delete', todos: [todo('a', 'milk')] }), 'Deleted “milk”.');
  assert.equal(describeAction({ kind: 'delete', todos: [todo('a', 'x'), todo('b', 'y')] }), 'Deleted 2 todos.');
  assert.equal(describeAction({ kind: 'toggle', completed: true, was: [{ id: 'a' }] }), 'Marked 1 todo as completed.');
  assert.equal(describeAction({ kind: 'title', id: 'a', from: 'a', to: 'b' }), 'Renamed “a” to “b”.');
});
