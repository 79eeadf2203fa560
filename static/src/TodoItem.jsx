// One li of ul.todo-list. Double-click the label to edit; Enter or blur saves,
// Escape cancels. The rev and title at the moment editing began travel with
// the save, so the caller can send a conditional (If-Match) write.
import { useEffect, useRef, useState } from 'react';

export function TodoItem({ todo, onToggle, onDestroy, onSaveTitle }) {
  // null, or { text, baseRev, baseTitle } while editing. The stream may
  // update `todo` meanwhile; the draft deliberately keeps the user's text.
  const [draft, setDraft] = useState(null);
  const editInput = useRef(null);
  // Enter/Escape end the edit and unmount the input, which can still fire a
  // blur; this makes sure one edit leads to at most one save.
  const finished = useRef(false);
  const editing = draft !== null;

  useEffect(() => {
    if (!editing) return;
    const input = editInput.current;
    input.focus();
    input.setSelectionRange(input.value.length, input.value.length);
  }, [editing]);

  function startEditing() {
    finished.current = false;
    setDraft({ text: todo.title, baseRev: todo.rev, baseTitle: todo.title });
  }

  function save() {
    if (finished.current || !draft) return;
    finished.current = true;
    setDraft(null);
    onSaveTitle(todo, draft.text, { baseRev: draft.baseRev, baseTitle: draft.baseTitle });
  }

  function cancel() {
    finished.current = true;
    setDraft(null);
  }

  function handleKeyDown(event) {
    if (event.key === 'Enter' && !event.nativeEvent.isComposing) save();
    else if (event.key === 'Escape') cancel();
  }

  const className = [todo.completed && 'completed', editing && 'editing'].filter(Boolean).join(' ');

  return (
    <li className={className || undefined} data-id={todo.id}>
      <div className="view">
        <input className="toggle" type="checkbox" checked={todo.completed} onChange={() => onToggle(todo)} />
        <label onDoubleClick={startEditing}>{todo.title}</label>
        <button type="button" className="destroy" aria-label="Delete" onClick={() => onDestroy(todo)} />
      </div>
      {editing && (
        <input
          ref={editInput}
          className="edit"
          value={draft.text}
          onChange={(e) => setDraft({ ...draft, text: e.target.value })}
          onKeyDown={handleKeyDown}
          onBlur={save}
        />
      )}
    </li>
  );
}
