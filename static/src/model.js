// The client-side todo list model: a pure function of the stream messages the
// server sends (see API.md, "Streams"). No DOM, no React, no I/O, so it can be
// unit-tested with node alone and reused by any view.
//
// State shape: { todos: Todo[] (oldest first), rev: number, synced: boolean }
//   rev    — the latest change this state reflects; the resume point for
//            `?since=` after a reconnect.
//   synced — a `ready` has been seen, i.e. the initial sync is complete.
// States are never mutated; every transition returns a new object (or the very
// same object when a message changes nothing, so React can skip a render).

export const initialState = Object.freeze({ todos: Object.freeze([]), rev: 0, synced: false });

/** Apply one server message; unknown message types leave the state as is. */
export function applyMessage(state, message) {
  switch (message?.type) {
    case 'snapshot':
      return applySnapshot(state, message);
    case 'change':
      return applyChange(state, message);
    case 'ready':
      return applyReady(state, message);
    default:
      return state;
  }
}

function applySnapshot(state, { todos, todo, rev }) {
  // The list stream sends `todos`; the one-todo stream sends a single `todo`.
  const rows = todos ?? (todo ? [todo] : []);
  // A snapshot replaces everything: it also arrives when a `since` was older
  // than the server's history, and then the old rows may be stale.
  return { todos: sortTodos(rows), rev, synced: state.synced };
}

function applyChange(state, { op, todo, rev }) {
  // The server delivers each change exactly once and in order, but a change
  // can still be seen twice across a reconnect or if REST replies are folded
  // in; anything at or below the current rev is already reflected.
  if (!(rev > state.rev)) return state;
  const todos = op === 'delete' ? removeTodo(state.todos, todo.id) : upsertTodo(state.todos, { ...todo, rev });
  return { todos, rev, synced: state.synced };
}

function applyReady(state, { rev }) {
  return { todos: state.todos, rev: Math.max(state.rev, rev), synced: true };
}

/**
 * Fold in a todo read over REST (e.g. after a 412) without moving the stream's
 * resume point: that read says nothing about other todos, so advancing `rev`
 * could skip their changes. Only a newer version of the todo replaces ours.
 */
export function mergeFetchedTodo(state, todo) {
  const current = state.todos.find((t) => t.id === todo.id);
  if (current && current.rev >= todo.rev) return state;
  return { ...state, todos: upsertTodo(state.todos, todo) };
}

function upsertTodo(todos, todo) {
  const index = todos.findIndex((t) => t.id === todo.id);
  if (index === -1) return sortTodos([...todos, todo]);
  const next = todos.slice();
  // Keep fields a partial change might omit; created_time never changes, so
  // the order stays valid without re-sorting.
  next[index] = { ...todos[index], ...todo };
  return next;
}

function removeTodo(todos, id) {
  const next = todos.filter((t) => t.id !== id);
  // Deleting an id we never had (e.g. a row leaving a live query we had not
  // seen yet) is a no-op; keep the same array so nothing re-renders.
  return next.length === todos.length ? todos : next;
}

// ---- ordering ---------------------------------------------------------------

/** Oldest first by created_time, then by id, the same order as the server. */
export function sortTodos(todos) {
  return todos.slice().sort(compareTodos);
}

export function compareTodos(a, b) {
  const [aMs, aSub] = timeKey(a.created_time);
  const [bMs, bSub] = timeKey(b.created_time);
  if (aMs !== bMs) return aMs - bMs;
  if (aSub !== bSub) return aSub - bSub;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

// Date.parse keeps only milliseconds, but the server stamps microseconds, and
// two todos created in the same millisecond must still sort like the server
// sorts them. So split the instant into epoch milliseconds (offset-aware) and
// the sub-millisecond digits of the fraction.
function timeKey(iso) {
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) return [Infinity, 0]; // malformed: sort last, stably by id
  const fraction = /T[\d:]+\.(\d+)/.exec(iso)?.[1] ?? '';
  const subMillisecond = Number(fraction.slice(3, 9).padEnd(6, '0'));
  return [ms, subMillisecond];
}

// ---- selectors --------------------------------------------------------------

export const FILTERS = Object.freeze(['all', 'active', 'completed']);

/** "#/active" → "active", "#/completed" → "completed", anything else → "all". */
export function filterFromHash(hash) {
  const name = String(hash ?? '').replace(/^#\/?/, '');
  return FILTERS.includes(name) ? name : 'all';
}

export function filterTodos(todos, filter) {
  if (filter === 'active') return todos.filter((t) => !t.completed);
  if (filter === 'completed') return todos.filter((t) => t.completed);
  return todos;
}

export function activeCount(todos) {
  return todos.reduce((n, t) => (t.completed ? n : n + 1), 0);
}

export function completedCount(todos) {
  return todos.length - activeCount(todos);
}

export function allCompleted(todos) {
  return todos.length > 0 && activeCount(todos) === 0;
}
