import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  applyMessage,
  applyMessages,
  applyPending,
  clearedCompleted,
  forgetTodo,
  initialState,
  mergeFetchedTodo,
  mergeFetchedTodos,
  parseRoute,
  routeHash,
} from '../src/model.js';
import { applyListMessage, canManage, canWrite } from '../src/lists.js';
import { frameBatcher } from '../src/batch.js';

const at = (s) => `2024-05-01T10:00:0${s}.000000+00:00`;
const todo = (id, title, rev, extra = {}) => ({ id, title, completed: false, created_time: at(rev % 10), rev, ...extra });
const A = todo('a', 'first', 1);
const B = todo('b', 'second', 2, { completed: true });
const synced = applyMessages(initialState, [
  { type: 'snapshot', todos: [A, B], rev: 2 },
  { type: 'ready', rev: 2 },
]);

// ---- the pending overlay ----

test('no pending writes: the very same array (nothing re-renders)', () => {
  assert.equal(applyPending(synced.todos, []), synced.todos);
});

test('a pending create shows at the end, marked pending', () => {
  const view = applyPending(synced.todos, [{ kind: 'create', todo: todo('c', 'new', 3) }]);
  assert.deepEqual(view.map((t) => [t.id, Boolean(t.pending)]), [['a', false], ['b', false], ['c', true]]);
});

test('a pending create already confirmed by the stream is not shown twice', () => {
  const state = applyMessage(synced, { type: 'change', op: 'insert', todo: todo('c', 'new', 3), rev: 3 });
  const view = applyPending(state.todos, [{ kind: 'create', todo: todo('c', 'new', 3) }]);
  assert.equal(view.filter((t) => t.id === 'c').length, 1);
});

test('pending writes apply in order over the confirmed rows', () => {
  const view = applyPending(synced.todos, [
    { kind: 'update', id: 'a', fields: { completed: true } },
    { kind: 'update', id: 'a', fields: { title: 'renamed' } },
    { kind: 'delete', id: 'b' },
  ]);
  assert.deepEqual(view, [{ ...A, completed: true, title: 'renamed', pending: true }]);
  assert.equal(synced.todos[0].title, 'first', 'the confirmed state is untouched');
});

test('toggle all and clear completed as overlays', () => {
  const all = applyPending(synced.todos, [{ kind: 'toggleAll', completed: true }]);
  assert.deepEqual(all.map((t) => t.completed), [true, true]);
  const cleared = applyPending(synced.todos, [{ kind: 'clearCompleted' }]);
  assert.deepEqual(cleared.map((t) => t.id), ['a']);
});

test('the stream changing a row under a pending write keeps the user\'s value on top', () => {
  const state = applyMessage(synced, { type: 'change', op: 'update', todo: { ...A, title: 'theirs' }, rev: 3 });
  const view = applyPending(state.todos, [{ kind: 'update', id: 'a', fields: { completed: true } }]);
  assert.equal(view[0].title, 'theirs');
  assert.equal(view[0].completed, true);
});

// ---- REST replies folded into the confirmed state ----

test('a REST reply newer than the stream shows, and the stream\'s older echo does not undo it', () => {
  const replied = mergeFetchedTodo(synced, { ...A, title: 'mine', rev: 5 });
  assert.equal(replied.rev, 2, 'the resume point does not move');
  const echo = applyMessages(replied, [
    { type: 'change', op: 'update', todo: { ...A, completed: true }, rev: 4 },
    { type: 'change', op: 'update', todo: { ...A, title: 'mine' }, rev: 5 },
  ]);
  assert.equal(echo.todos[0].title, 'mine');
  assert.equal(echo.rev, 5);
});

test('a todo deleted over REST stays gone until the stream\'s delete, even past older changes', () => {
  const forgotten = forgetTodo(synced, 'a');
  assert.deepEqual(forgotten.todos.map((t) => t.id), ['b']);
  const older = applyMessage(forgotten, { type: 'change', op: 'update', todo: { ...A, title: 'x' }, rev: 3 });
  assert.deepEqual(older.todos.map((t) => t.id), ['b'], 'not resurrected');
  const deleted = applyMessage(older, { type: 'change', op: 'delete', todo: { id: 'a' }, rev: 4 });
  assert.deepEqual(deleted.gone, {});
});

test('a delete reply after the stream\'s delete leaves no mark: the todo can come back with its id', () => {
  const streamed = applyMessage(synced, { type: 'change', op: 'delete', todo: { id: 'a' }, rev: 4 });
  const replied = forgetTodo(streamed, 'a');
  assert.deepEqual(replied.gone, {});
  const back = applyMessage(replied, { type: 'change', op: 'insert', todo: { ...A, title: 'back' }, rev: 5 });
  assert.deepEqual(back.todos.map((t) => t.id).sort(), ['a', 'b']);
});

test('a toggle-all reply of many todos is folded in like one by one', () => {
  const many = Array.from({ length: 20 }, (_, i) => todo(`m${String(i).padStart(2, '0')}`, `m ${i}`, i + 1));
  const base = applyMessages(initialState, [{ type: 'snapshot', todos: many, rev: 20 }]);
  const reply = many.slice(5).map((t, i) => ({ ...t, completed: true, rev: 21 + i }));
  const fast = mergeFetchedTodos(forgetTodo(base, 'm07'), reply);
  const slow = reply.reduce(mergeFetchedTodo, forgetTodo(base, 'm07'));
  assert.deepEqual(fast.todos, slow.todos);
  assert.equal(fast.todos.length, 19);
});

test('a clear-completed reply removes what was completed at its rev, not later completions', () => {
  const later = applyMessage(synced, { type: 'change', op: 'update', todo: { ...A, completed: true }, rev: 9 });
  const cleared = clearedCompleted(later, 5);
  assert.deepEqual(cleared.todos.map((t) => t.id), ['a']);
});

// ---- batches ----

test('a batch gives the same state as the messages one by one', () => {
  const messages = [
    { type: 'change', op: 'insert', todo: todo('c', 'third', 3), rev: 3 },
    { type: 'change', op: 'update', todo: { ...A, completed: true }, rev: 4 },
    { type: 'change', op: 'delete', todo: { id: 'b' }, rev: 5 },
    { type: 'change', op: 'insert', todo: todo('d', 'fourth', 6), rev: 6 },
    { type: 'change', op: 'update', todo: { id: 'd', title: 'fourth!' }, rev: 7 },
    { type: 'change', op: 'update', todo: { ...A, completed: true }, rev: 4 }, // a repeat: ignored
  ];
  const batched = applyMessages(synced, messages);
  const oneByOne = messages.reduce(applyMessage, synced);
  assert.deepEqual(batched.todos, oneByOne.todos);
  assert.equal(batched.rev, oneByOne.rev);
});

test('a batch of 1,000 toggles is applied in linear time', () => {
  const many = Array.from({ length: 1000 }, (_, i) => todo(`t${String(i).padStart(4, '0')}`, `todo ${i}`, i + 1));
  const base = applyMessages(initialState, [{ type: 'snapshot', todos: many, rev: 1000 }, { type: 'ready', rev: 1000 }]);
  const changes = many.map((t, i) => ({ type: 'change', op: 'update', todo: { ...t, completed: true }, rev: 1001 + i }));
  const started = performance.now();
  const after = applyMessages(base, changes);
  const elapsed = performance.now() - started;
  assert.ok(after.todos.every((t) => t.completed));
  assert.equal(after.rev, 2000);
  assert.ok(elapsed < 200, `took ${elapsed} ms`);
});

test('frameBatcher delivers everything pushed before a frame as one batch', () => {
  const frames = [];
  const batches = [];
  const batcher = frameBatcher((b) => batches.push(b), { requestFrame: (f) => frames.push(f), fallbackMs: 1e9 });
  batcher.push(1);
  batcher.push(2);
  batcher.push(3);
  assert.equal(frames.length, 1, 'one frame requested');
  frames[0]();
  batcher.push(4);
  frames[1]();
  assert.deepEqual(batches, [[1, 2, 3], [4]]);
  batcher.cancel();
});

// ---- routes ----

test('routes: personal list short forms and per-list URLs keep the filter', () => {
  assert.deepEqual(parseRoute('#/'), { listId: null, filter: 'all' });
  assert.deepEqual(parseRoute('#/active'), { listId: null, filter: 'active' });
  assert.deepEqual(parseRoute('#/lists/abc/'), { listId: 'abc', filter: 'all' });
  assert.deepEqual(parseRoute('#/lists/abc/completed'), { listId: 'abc', filter: 'completed' });
  assert.deepEqual(parseRoute('#/lists/abc/bogus'), { listId: 'abc', filter: 'all' });
  assert.equal(routeHash(null, 'active'), '#/active');
  assert.equal(routeHash('abc', 'all'), '#/lists/abc/');
  assert.equal(routeHash('abc', 'completed'), '#/lists/abc/completed');
});

// ---- the lists model ----

const L = (id, title, extra = {}) => ({ id, title, role: 'owner', personal: false, created_time: at(1), rev: 1, ...extra });

test('lists: snapshot puts the personal list first; changes upsert and remove', () => {
  let lists = applyListMessage(null, {
    type: 'snapshot',
    lists: [L('x', 'Groceries'), L('p', 'Todos', { personal: true, created_time: at(5) })],
  });
  assert.deepEqual(lists.map((l) => l.id), ['p', 'x']);
  lists = applyListMessage(lists, { type: 'change', op: 'insert', list: L('y', 'Shared with me', { role: 'viewer', created_time: at(2) }) });
  assert.deepEqual(lists.map((l) => l.title), ['Todos', 'Groceries', 'Shared with me']);
  lists = applyListMessage(lists, { type: 'change', op: 'update', list: { id: 'x', title: 'Food' } });
  assert.equal(lists[1].title, 'Food');
  assert.equal(lists[1].role, 'owner', 'a partial update keeps the other fields');
  lists = applyListMessage(lists, { type: 'change', op: 'delete', list: { id: 'y' } });
  assert.deepEqual(lists.map((l) => l.id), ['p', 'x']);
  assert.equal(applyListMessage(lists, { type: 'change', op: 'delete', list: { id: 'nope' } }), lists);
});

test('roles: viewers read only, editors write, owners manage', () => {
  assert.deepEqual(['owner', 'editor', 'viewer'].map(canWrite), [true, true, false]);
  assert.deepEqual(['owner', 'editor', 'viewer'].map(canManage), [true, false, false]);
});
