// The client-side todo list model: a pure function of the stream messages the
// server sends (see docs/api.md, "Streams"). No DOM, no React, no I/O, so it can be
// unit-tested with node alone and reused by any view.
//
// State shape: { todos: Todo[] (oldest first), rev: number, synced: boolean, gone: {id: true} }
//   a todo changed by a stream message carries its author as `by` (the message's)
//   rev    — the latest change this state reflects; the resume point for
//            `?since=` after a reconnect.
//   synced — a `ready` has been seen, i.e. the initial sync is complete.
//   gone   — ids this client deleted over REST whose stream delete has not
//            arrived yet: an older change still in flight must not bring them back.
//
// What the user sees is this confirmed state with the writes not yet answered
// laid over it (applyPending): the overlay goes as soon as a write is answered
// and its reply has been folded in here, so nothing flickers.
// States are never mutated; every transition returns a new object (or the very
// same object when a message changes nothing, so React can skip a render).

export const initialState = Object.freeze({ todos: Object.freeze([]), rev: 0, synced: false, gone: Object.freeze({}) });

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
  return { todos: sortTodos(rows), rev, synced: state.synced, gone: {} };
}

function applyChange(state, { op, todo, rev, by }) {
  // The server delivers each change exactly once and in order, but a change
  // can still be seen twice across a reconnect or if REST replies are folded
  // in; anything at or below the current rev is already reflected.
  if (!(rev > state.rev)) return state;
  if (op === 'delete') {
    const gone = todo.id in state.gone ? withoutKey(state.gone, todo.id) : state.gone;
    return { todos: removeTodo(state.todos, todo.id), rev, synced: state.synced, gone };
  }
  // A REST reply may already have shown a newer version, or this client deleted it.
  const current = state.todos.find((t) => t.id === todo.id);
  if ((current && current.rev >= rev) || todo.id in state.gone) return { ...state, rev };
  return { todos: upsertTodo(state.todos, { ...todo, rev, by }), rev, synced: state.synced, gone: state.gone };
}

function applyReady(state, { rev }) {
  return { todos: state.todos, rev: Math.max(state.rev, rev), synced: true, gone: state.gone };
}

/**
 * Apply a batch of stream messages (one animation frame's worth) at once.
 * Same result as applying them one by one, but the todo array is copied once
 * and indexed once, so 1,000 changes cost O(n), not O(n²).
 */
export function applyMessages(state, messages) {
  let todos = null; // a private copy, made on the first row change
  let index = null; // id -> position in `todos`
  let inserted = false;
  let { rev, synced, gone } = state;
  const own = () => {
    if (todos) return;
    todos = state.todos.slice();
    index = new Map(todos.map((t, i) => [t.id, i]));
  };
  const drop = (ids) => {
    todos = todos.filter((t) => !ids.has(t.id));
    index = new Map(todos.map((t, i) => [t.id, i]));
  };
  let removed = new Set();
  const flushRemoved = () => {
    if (removed.size) drop(removed);
    removed = new Set();
  };
  for (const message of messages) {
    if (message?.type === 'snapshot') {
      const next = applySnapshot({ synced }, message);
      todos = next.todos.slice();
      index = new Map(todos.map((t, i) => [t.id, i]));
      removed = new Set();
      inserted = false;
      ({ rev, gone } = next);
    } else if (message?.type === 'ready') {
      rev = Math.max(rev, message.rev);
      synced = true;
    } else if (message?.type === 'change') {
      if (!(message.rev > rev)) continue;
      rev = message.rev;
      own();
      const { id } = message.todo;
      if (message.op === 'delete') {
        if (index.has(id) && !removed.has(id)) removed.add(id);
        if (id in gone) gone = withoutKey(gone, id);
        continue;
      }
      if (id in gone) continue;
      if (removed.has(id)) flushRemoved(); // deleted then re-inserted: keep the order honest
      const at = index.get(id);
      if (at === undefined) {
        index.set(id, todos.length);
        todos.push({ ...message.todo, rev: message.rev, by: message.by });
        inserted = true;
      } else if (todos[at].rev < message.rev) {
        todos[at] = { ...todos[at], ...message.todo, rev: message.rev, by: message.by };
      }
    }
  }
  if (!todos) {
    return rev === state.rev && synced === state.synced ? state : { todos: state.todos, rev, synced, gone };
  }
  flushRemoved();
  return { todos: inserted ? sortTodos(todos) : todos, rev, synced, gone };
}

/** A todo this client deleted over REST (204): hide it until the stream says so too. */
export function forgetTodo(state, id) {
  // The stream said so first: nothing to hide, and a mark left here would
  // hide the todo for good when it comes back with its id (undo).
  if (!state.todos.some((t) => t.id === id)) return state;
  const todos = removeTodo(state.todos, id);
  return { ...state, todos, gone: { ...state.gone, [id]: true } };
}

/**
 * Fold in a clear-completed reply `{deleted, rev}`: every todo that was
 * completed at `rev` is gone. A todo whose last change is at or before `rev`
 * and that is completed now was completed then too.
 */
export function clearedCompleted(state, rev) {
  const doomed = state.todos.filter((t) => t.completed && t.rev <= rev);
  if (doomed.length === 0) return state;
  const gone = { ...state.gone };
  for (const t of doomed) gone[t.id] = true;
  return { ...state, todos: state.todos.filter((t) => !(t.completed && t.rev <= rev)), gone };
}

function withoutKey(object, key) {
  const { [key]: _, ...rest } = object;
  return rest;
}

/**
 * Fold in a todo read over REST (e.g. after a 412) without moving the stream's
 * resume point: that read says nothing about other todos, so advancing `rev`
 * could skip their changes. Only a newer version of the todo replaces ours.
 */
export function mergeFetchedTodo(state, todo) {
  if (todo.id in state.gone) return state;
  const current = state.todos.find((t) => t.id === todo.id);
  if (current && current.rev >= todo.rev) return state;
  return { ...state, todos: upsertTodo(state.todos, todo) };
}

/** Several todos read over REST (e.g. a toggle-all reply), folded in at once. */
export function mergeFetchedTodos(state, todos) {
  if (todos.length < 8) return todos.reduce(mergeFetchedTodo, state);
  // A toggle-all reply can carry 1,000 todos: one copy and one index, not one per todo.
  const next = state.todos.slice();
  const index = new Map(next.map((t, i) => [t.id, i]));
  let inserted = false;
  let changed = false;
  for (const todo of todos) {
    if (todo.id in state.gone) continue;
    const at = index.get(todo.id);
    if (at === undefined) {
      index.set(todo.id, next.length);
      next.push(todo);
      inserted = changed = true;
    } else if (next[at].rev < todo.rev) {
      next[at] = { ...next[at], ...todo };
      changed = true;
    }
  }
  if (!changed) return state;
  return { ...state, todos: inserted ? sortTodos(next) : next };
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
  return parseRoute(hash).filter;
}

/**
 * The page's route: `#/`, `#/active`, `#/completed` are the personal list;
 * `#/lists/<id>/`, `#/lists/<id>/active`, `#/lists/<id>/completed` any list.
 * Returns { listId: string | null (null: the personal list), filter }.
 */
export function parseRoute(hash) {
  const path = String(hash ?? '').replace(/^#\/?/, '');
  const match = /^lists\/([^/]+)\/?(.*)$/.exec(path);
  const rest = match ? match[2] : path;
  const filter = FILTERS.includes(rest) ? rest : 'all';
  return { listId: match ? decodeURIComponent(match[1]) : null, filter };
}

/** The hash for a list (null: the personal list's short form) and a filter. */
export function routeHash(listId, filter = 'all') {
  const tail = filter === 'all' ? '' : filter;
  return listId == null ? `#/${tail}` : `#/lists/${encodeURIComponent(listId)}/${tail}`;
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

// ---- pending writes (the optimistic overlay) ------------------------------------

/**
 * The todos as the user should see them: the confirmed ones with every write
 * not yet answered applied in order. Rows a pending write touches are marked
 * `pending: true` (shown as not yet saved). Ops (see outbox.js):
 *   { kind: 'create', todo }            { kind: 'update', id, fields }
 *   { kind: 'delete', id }              { kind: 'toggleAll', completed }
 *   { kind: 'clearCompleted' }
 */
export function applyPending(todos, ops) {
  if (ops.length === 0) return todos;
  let rows = todos;
  for (const op of ops) rows = applyOp(rows, op);
  return rows;
}

function applyOp(rows, op) {
  switch (op.kind) {
    case 'create':
      if (rows.some((t) => t.id === op.todo.id)) return rows; // already confirmed
      return [...rows, { ...op.todo, pending: true }];
    case 'update':
      return rows.map((t) => (t.id === op.id ? { ...t, ...op.fields, pending: true } : t));
    case 'delete':
      return rows.filter((t) => t.id !== op.id);
    case 'toggleAll':
      // Rows are not marked pending here: with 1,000 rows that mark would cost
      // a second full re-render when the reply lands (the status bar counts it).
      return rows.map((t) => (t.completed === op.completed ? t : { ...t, completed: op.completed }));
    case 'clearCompleted':
      return rows.filter((t) => !t.completed);
    default:
      return rows;
  }
}
