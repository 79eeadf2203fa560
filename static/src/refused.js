// Writes the server refused for good (lost access, a deleted list, a title it
// will not take): kept, with their content, until the user has dealt with them.

/** What the write would have done, in words, and the text it carried (if any). */
export function describeOp(op) {
  const label = op.label ?? '';
  switch (op.kind) {
    case 'create':
      return { what: `Add “${op.todo.title}”`, text: op.todo.title };
    case 'update':
      if (op.fields.title != null) return { what: `Rename “${label}” to “${op.fields.title}”`, text: op.fields.title };
      return { what: `Mark “${label}” as ${op.fields.completed ? 'completed' : 'active'}`, text: label };
    case 'delete':
      return { what: `Delete “${label}”`, text: label };
    case 'toggleAll':
      return { what: `Mark all as ${op.completed ? 'completed' : 'active'}`, text: '' };
    case 'clearCompleted':
      return { what: 'Clear completed', text: '' };
    default:
      return { what: op.kind, text: '' };
  }
}

/** A refused write as kept: the op, where it was meant to go, and the server's reason. */
export function refusedEntry(op, reason) {
  return { seq: op.seq, op, listTitle: op.listTitle ?? '', reason, ...describeOp(op) };
}

/** Text the user typed that did not become a write (an edit cut short): kept the same way. */
export function keptText(text, listTitle, reason, seq = Date.now() * 1000) {
  return { seq, op: null, listTitle, reason, what: `Your text “${text}”`, text };
}
