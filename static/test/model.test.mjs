import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  activeCount,
  allCompleted,
  applyMessage,
  completedCount,
  filterFromHash,
  filterTodos,
  initialState,
  mergeFetchedTodo,
  sortTodos,
} from '../src/model.js';

// Fixed ids and times so the expected order is obvious from the names.
const todo = (id, title, { completed = false, rev = 1, created = '2024-05-01T10:00:00.000000+00:00' } = {}) => ({
  id,
  title,
  completed,
  created_time: created,
  rev,
});
const A = todo('aaaaaaaa-0000-4000-8000-000000000001', 'first', { rev: 3, created: '2024-05-01T10:00:01.000000+00:00' });
const B = todo('bbbbbbbb-0000-4000-8000-000000000002', 'second', { rev: 5, created: '2024-05-01T10:00:02.000000+00:00', completed: true });
const C = todo('cccccccc-0000-4000-8000-000000000003', 'third', { rev: 7, created: '2024-05-01T10:00:03.000000+00:00' });

const ids = (state) => state.todos.map((t) => t.id);
const titles = (state) => state.todos.map((t) => t.title);
const play = (...messages) => messages.reduce(applyMessage, initialState);
const snapshot = (todos, rev) => ({ type: 'snapshot', todos, rev });
const change = (op, t, rev) => ({ type: 'change', op, todo: t, rev });

// ---- snapshot and ready ----

test('initial state is empty, at rev 0 and not synced', () => {
  assert.deepEqual(initialState.todos, []);
  assert.equal(initialState.rev, 0);
  assert.equal(initialState.synced, false);
});

test('snapshot replaces the whole state and sets rev', () => {
  const before = play(snapshot([A, B], 5));
  const after = applyMessage(before, snapshot([C], 9));
  assert.deepEqual(ids(after), [C.id]);
  assert.equal(after.rev, 9);
});

test('snapshot rows are ordered oldest first even if sent out of order', () => {
  const state = play(snapshot([C, A, B], 7));
  assert.deepEqual(titles(state), ['first', 'second', 'third']);
});

test('one-todo snapshot (todo instead of todos) yields that one todo', () => {
  const state = play({ type: 'snapshot', todo: B, rev: 5 });
  assert.deepEqual(ids(state), [B.id]);
});

test('ready marks the state synced and moves rev forward', () => {
  const state = play(snapshot([A], 3), { type: 'ready', rev: 12 });
  assert.equal(state.synced, true);
  assert.equal(state.rev, 12);
  assert.deepEqual(ids(state), [A.id], 'ready does not touch the rows');
});

test('ready never moves rev backwards', () => {
  const state = play(snapshot([A], 3), change('insert', C, 7), { type: 'ready', rev: 4 });
  assert.equal(state.rev, 7);
});

test('changes after ready with rev <= ready.rev are ignored', () => {
  const state = play(snapshot([A], 3), { type: 'ready', rev: 10 }, change('insert', C, 10));
  assert.deepEqual(ids(state), [A.id]);
});

// ---- changes ----

test('insert adds the todo and sets rev', () => {
  const state = play(snapshot([A], 3), change('insert', C, 7));
  assert.deepEqual(ids(state), [A.id, C.id]);
  assert.equal(state.rev, 7);
});

test('update replaces the todo in place', () => {
  const renamed = { ...A, title: 'renamed', completed: true, rev: 8 };
  const state = play(snapshot([A, B], 5), change('update', renamed, 8));
  assert.deepEqual(titles(state), ['renamed', 'second']);
  assert.equal(state.todos[0].completed, true);
  assert.equal(state.todos[0].rev, 8);
});

test('delete removes the todo; a delete carries only the id', () => {
  const state = play(snapshot([A, B, C], 7), change('delete', { id: B.id }, 8));
  assert.deepEqual(ids(state), [A.id, C.id]);
  assert.equal(state.rev, 8);
});

test('delete of an unknown id is a no-op on the rows but still advances rev', () => {
  const before = play(snapshot([A, B], 5));
  const after = applyMessage(before, change('delete', { id: 'dddddddd-0000-4000-8000-000000000004' }, 6));
  assert.deepEqual(ids(after), [A.id, B.id]);
  assert.equal(after.todos, before.todos, 'the row array is reused, so nothing re-renders');
  assert.equal(after.rev, 6);
});

test('insert of an id we already have upserts instead of duplicating', () => {
  const again = { ...A, title: 'first, again', rev: 9 };
  const state = play(snapshot([A, B], 5), change('insert', again, 9));
  assert.deepEqual(ids(state), [A.id, B.id]);
  assert.equal(state.todos[0].title, 'first, again');
});

test('update of an id we do not have upserts it (idempotent apply)', () => {
  const state = play(snapshot([A], 3), change('update', C, 7));
  assert.deepEqual(ids(state), [A.id, C.id]);
});

test('a change repeated with the same rev is ignored', () => {
  const renamed = { ...A, title: 'renamed', rev: 8 };
  const once = play(snapshot([A], 3), change('update', renamed, 8));
  const twice = applyMessage(once, change('update', { ...A, title: 'stale replay', rev: 8 }, 8));
  assert.equal(twice, once, 'same state object back');
  assert.deepEqual(titles(twice), ['renamed']);
});

test('a change older than the current rev is ignored (no resurrection)', () => {
  const state = play(snapshot([A, B], 5), change('delete', { id: A.id }, 6), change('insert', A, 4));
  assert.deepEqual(ids(state), [B.id]);
  assert.equal(state.rev, 6);
});

test('a change at or below a snapshot rev is ignored', () => {
  const state = play(snapshot([A, B], 5), change('delete', { id: B.id }, 5));
  assert.deepEqual(ids(state), [A.id, B.id]);
});

test('unknown message types leave the state untouched', () => {
  const before = play(snapshot([A], 3));
  assert.equal(applyMessage(before, { type: 'pong' }), before);
  assert.equal(applyMessage(before, null), before);
});

test('resume after a drop: missed changes apply on top of the kept list', () => {
  const live = play(snapshot([A, B], 5), { type: 'ready', rev: 5 });
  const resumed = [change('update', { ...B, completed: false, rev: 6 }, 6), change('insert', C, 7), { type: 'ready', rev: 7 }].reduce(
    applyMessage,
    live,
  );
  assert.deepEqual(titles(resumed), ['first', 'second', 'third']);
  assert.equal(resumed.todos[1].completed, false);
  assert.equal(resumed.rev, 7);
});

// ---- live query (completed=false): rows enter as insert, leave as delete ----

test('live query: a row that starts matching enters as insert in created order', () => {
  // Subscribed to active todos; B (older than C) is un-completed elsewhere.
  const activeOnly = play(snapshot([A, C], 7), { type: 'ready', rev: 7 });
  const entered = applyMessage(activeOnly, change('insert', { ...B, completed: false, rev: 8 }, 8));
  assert.deepEqual(titles(entered), ['first', 'second', 'third']);
});

test('live query: a row that stops matching leaves as delete', () => {
  const activeOnly = play(snapshot([A, C], 7), { type: 'ready', rev: 7 });
  const left = applyMessage(activeOnly, change('delete', { id: A.id }, 8));
  assert.deepEqual(titles(left), ['third']);
});

// ---- ordering ----

test('new todos go after older ones regardless of arrival order', () => {
  const state = play(snapshot([], 0), change('insert', C, 7), change('insert', A, 8), change('insert', B, 9));
  assert.deepEqual(titles(state), ['first', 'second', 'third']);
});

test('ordering uses the instant, not the text, across UTC offsets', () => {
  const early = todo('ffffffff-0000-4000-8000-000000000001', 'early', { created: '2024-05-01T12:00:00+02:00' }); // 10:00Z
  const late = todo('00000000-0000-4000-8000-000000000002', 'late', { created: '2024-05-01T11:00:00+00:00' });
  assert.deepEqual(
    sortTodos([late, early]).map((t) => t.title),
    ['early', 'late'],
  );
});

test('ordering keeps microseconds within one millisecond', () => {
  const first = todo('ffffffff-0000-4000-8000-000000000001', 'first', { created: '2024-05-01T10:00:00.123001+00:00' });
  const second = todo('00000000-0000-4000-8000-000000000002', 'second', { created: '2024-05-01T10:00:00.123002+00:00' });
  assert.deepEqual(
    sortTodos([second, first]).map((t) => t.title),
    ['first', 'second'],
  );
});

test('equal created_time falls back to id order', () => {
  const same = '2024-05-01T10:00:00+00:00';
  const x = todo('22222222-0000-4000-8000-000000000000', 'x', { created: same });
  const y = todo('11111111-0000-4000-8000-000000000000', 'y', { created: same });
  assert.deepEqual(
    sortTodos([x, y]).map((t) => t.title),
    ['y', 'x'],
  );
});

// ---- REST reads folded in without moving the stream's resume point ----

test('mergeFetchedTodo takes a newer todo but keeps rev (the resume point)', () => {
  const state = play(snapshot([A, B], 5));
  const merged = mergeFetchedTodo(state, { ...A, title: 'newer', rev: 11 });
  assert.equal(merged.todos[0].title, 'newer');
  assert.equal(merged.rev, 5);
});

test('mergeFetchedTodo ignores a todo no newer than ours', () => {
  const state = play(snapshot([A, B], 5), change('update', { ...A, title: 'from stream', rev: 9 }, 9));
  assert.equal(mergeFetchedTodo(state, { ...A, title: 'stale read', rev: 9 }), state);
});

// ---- selectors ----

test('counts: active and completed', () => {
  const todos = [A, B, C];
  assert.equal(activeCount(todos), 2);
  assert.equal(completedCount(todos), 1);
  assert.equal(activeCount([]), 0);
  assert.equal(completedCount([]), 0);
});

test('allCompleted is true only for a non-empty, all-done list', () => {
  assert.equal(allCompleted([]), false);
  assert.equal(allCompleted([A, B]), false);
  assert.equal(allCompleted([B, { ...A, completed: true }]), true);
});

test('filters by route keep order', () => {
  const todos = [A, B, C];
  assert.deepEqual(filterTodos(todos, 'all').map((t) => t.title), ['first', 'second', 'third']);
  assert.deepEqual(filterTodos(todos, 'active').map((t) => t.title), ['first', 'third']);
  assert.deepEqual(filterTodos(todos, 'completed').map((t) => t.title), ['second']);
});

test('routes map to filters; unknown routes show all', () => {
  assert.equal(filterFromHash('#/'), 'all');
  assert.equal(filterFromHash(''), 'all');
  assert.equal(filterFromHash('#/active'), 'active');
  assert.equal(filterFromHash('#/completed'), 'completed');
  assert.equal(filterFromHash('#/nonsense'), 'all');
});

// ---- authors (docs/api.md: change messages carry `by`) ----

test('a change message leaves its author on the todo, one message or a batch', async () => {
  const { applyMessages } = await import('../src/model.js');
  const by = (t, rev, who) => ({ ...change('update', t, rev), by: who });
  let state = play(snapshot([A, B], 5), by({ ...A, title: 'x' }, 6, 'bob'));
  assert.equal(state.todos[0].by, 'bob');
  state = applyMessages(state, [by({ ...B, title: 'y' }, 7, 'carol'), { ...change('insert', C, 8), by: null }]);
  assert.deepEqual(state.todos.map((t) => t.by), ['bob', 'carol', null]);
  state = applyMessages(state, [by({ ...A, title: 'z' }, 9, 'dave')]);
  assert.equal(state.todos[0].by, 'dave');
});

test('a deleted todo restored with its id and created time comes back in its place (undo)', async () => {
  const { applyMessages } = await import('../src/model.js');
  let state = applyMessages(initialState, [snapshot([A, B, C], 7), { type: 'ready', rev: 7 }]);
  state = applyMessages(state, [change('delete', { id: B.id }, 8)]);
  assert.deepEqual(titles(state), ['first', 'third']);
  state = applyMessages(state, [change('insert', { ...B, rev: 9 }, 9)]);
  assert.deepEqual(titles(state), ['first', 'second', 'third']);
});
