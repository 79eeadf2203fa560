// Undo, made of ordinary writes: each undoable action is remembered as what it
// changed, and undoing it queues the writes that put that back, guarded like
// any other (client ids for creates, If-Match for updates). What someone else
// has changed since is left alone and counted, so the page can say so.
//
// An action:
//   { kind: 'delete', todos: [todo...] }                 delete, clear completed
//   { kind: 'toggle', completed, was: [{ id, completed }] } toggle all
//   { kind: 'title', id, from, to }                       a title edit

import { pickBase } from './outbox.js';

/** What to say about an action, in the undo notice. */
export function describeAction(action) {
  switch (action.kind) {
    case 'delete':
      return action.todos.length === 1 ? `Deleted “${action.todos[0].title}”.` : `Deleted ${action.todos.length} todos.`;
    case 'toggle':
      return `Marked ${action.was.length === 1 ? '1 todo' : `${action.was.length} todos`} as ${action.completed ? 'completed' : 'active'}.`;
    case 'title':
      return `Renamed “${action.from}” to “${action.to}”.`;
    default:
      return '';
  }
}

/**
 * The writes that undo `action`, given the todos as they are now (with the
 * server's revs); `skipped` counts the todos changed elsewhere since.
 * @returns {{ ops: object[], skipped: number }}
 */
export function undoOps(action, todos) {
  const byId = new Map(todos.map((t) => [t.id, t]));
  const ops = [];
  let skipped = 0;
  if (action.kind === 'delete') {
    for (const todo of action.todos) {
      if (byId.has(todo.id)) continue; // already back
      // Its own id: it comes back as itself, in its place (docs/api.md).
      ops.push({ kind: 'create', todo: { id: todo.id, title: todo.title, completed: todo.completed, created_time: todo.created_time } });
    }
  } else if (action.kind === 'toggle') {
    for (const { id, completed } of action.was) {
      const now = byId.get(id);
      if (!now) continue;
      if (now.completed !== action.completed) skipped += 1;
      else ops.push({ kind: 'update', id, fields: { completed }, base: pickBase(now) });
    }
  } else if (action.kind === 'title') {
    const now = byId.get(action.id);
    if (!now || now.title !== action.to) skipped += 1;
    else ops.push({ kind: 'update', id: action.id, fields: { title: action.from }, base: pickBase(now) });
  }
  return { ops, skipped };
}
