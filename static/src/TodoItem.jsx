// One li of ul.todo-list. Double-click the label, or focus it and press Enter
// or F2, to edit; Enter or blur saves, Escape cancels. What the todo was when
// editing began travels with the save, so the write can be conditional
// (If-Match) and a 412 can tell a real conflict from a change to another field.
//
// Memoised on what it shows: a stream echo that only moves a todo's rev does
// not re-render its row (1,000 rows stay cheap).
import { memo, useEffect, useLayoutEffect, useRef, useState } from 'react';
import { initials } from './people.js';
import { keepFocusFrom, neighbour } from './hooks.js';

// The server's limit (docs/api.md): a longer title cannot be typed, rather than be refused later.
export const MAX_TITLE = 512;

function TodoItemView({
  todo, readOnly, reopen, author, editor, onToggle, onDestroy, onSaveTitle, editBase, onLostDraft, onKeepDraft, onEditing,
}) {
  // null, or { text, base } while editing. The stream may update `todo`
  // meanwhile; the draft deliberately keeps the user's text.
  const [draft, setDraft] = useState(null);
  const editInput = useRef(null);
  const labelRef = useRef(null);
  // Enter/Escape end the edit and unmount the input, which can still fire a
  // blur; this makes sure one edit leads to at most one save.
  const finished = useRef(false);
  const refocus = useRef(false);
  const editing = draft !== null;
  const row = useRef(null);

  // Removed while editing (deleted elsewhere, access lost): hand the text over
  // rather than lose it silently. Enter/Escape/blur mark the edit finished first.
  const liveDraft = useRef(null);
  liveDraft.current = draft && !finished.current ? draft.text : null;
  useEffect(() => () => {
    if (liveDraft.current !== null) onLostDraft?.(todo.id, liveDraft.current);
  }, []); // eslint-disable-line react-hooks/exhaustive-deps

  // Layout effect: focus moves in the same frame the field appears or goes.
  useLayoutEffect(() => {
    if (editing) {
      const input = editInput.current;
      input.focus();
      input.setSelectionRange(input.value.length, input.value.length);
    } else if (refocus.current) {
      refocus.current = false;
      labelRef.current?.focus();
    }
  }, [editing]);

  // Presence: what this tab edits (docs/api.md, "Presence").
  useEffect(() => {
    if (!editing) return undefined;
    onEditing?.(todo.id, true);
    return () => onEditing?.(todo.id, false);
  }, [editing]); // eslint-disable-line react-hooks/exhaustive-deps

  // Made a viewer while editing: the edit ends, its text is kept for the user.
  useEffect(() => {
    if (readOnly && draft && !finished.current) {
      end(false);
      if (draft.text.trim() && draft.text !== todo.title) onKeepDraft?.(draft.text);
    }
  }, [readOnly]); // eslint-disable-line react-hooks/exhaustive-deps

  // A save that failed comes back here with the user's text.
  useEffect(() => {
    if (!reopen || readOnly) return;
    finished.current = false;
    setDraft({ text: reopen.text, base: editBase(todo.id) });
  }, [reopen?.nonce]); // eslint-disable-line react-hooks/exhaustive-deps

  function startEditing() {
    if (readOnly) return;
    finished.current = false;
    setDraft({ text: todo.title, base: editBase(todo.id) });
  }

  function end(keyboard) {
    finished.current = true;
    refocus.current = keyboard;
    setDraft(null);
  }

  function save(keyboard = false) {
    if (finished.current || !draft) return;
    end(keyboard);
    onSaveTitle(todo.id, draft.text, draft.base);
  }

  function handleKeyDown(event) {
    if (event.key === 'Enter' && !event.nativeEvent?.isComposing && !event.isComposing) save(true);
    else if (event.key === 'Escape') end(true);
  }

  function handleLabelKey(event) {
    if (event.key === 'Enter' || event.key === 'F2') {
      event.preventDefault();
      startEditing();
    } else if (event.key === 'Delete' && !readOnly) {
      destroy();
    }
  }

  // Keyboard users keep their place: focus moves to a neighbour, or the input.
  function destroy() {
    const li = row.current;
    if (li) keepFocusFrom(li, neighbour(li, '.toggle:not([disabled])'));
    onDestroy(todo.id);
  }

  const className = [todo.completed && 'completed', editing && 'editing', todo.pending && 'pending', (author || editor) && 'has-meta']
    .filter(Boolean)
    .join(' ');

  return (
    <li ref={row} className={className || undefined} data-id={todo.id} data-pending={todo.pending ? 'true' : undefined}>
      <div className="view">
        <input
          className="toggle"
          type="checkbox"
          checked={todo.completed}
          disabled={readOnly}
          aria-label={`Completed: ${todo.title}`}
          onChange={() => onToggle(todo.id)}
        />
        <label
          ref={labelRef}
          tabIndex={readOnly ? undefined : 0}
          title={readOnly ? undefined : 'Double-click, Enter or F2 to edit'}
          onDoubleClick={startEditing}
          onKeyDown={handleLabelKey}
        >
          {todo.title}
        </label>
        {(editor || author) && (
          <span className="todo-meta">
            {editor ? (
              <span className="editing-by" title={`${editor} is editing this`}>
                <span aria-hidden="true">✎ {initials(editor)}</span>
                <span className="visually-hidden">{editor} is editing this</span>
              </span>
            ) : (
              <span className="by">by {author}</span>
            )}
          </span>
        )}
        {!readOnly && (
          <button type="button" className="destroy" aria-label={`Delete: ${todo.title}`}
            onClick={destroy} />
        )}
      </div>
      {editing && (
        <input
          ref={editInput}
          className="edit"
          aria-label={`Edit: ${todo.title}`}
          value={draft.text}
          maxLength={MAX_TITLE}
          onChange={(e) => setDraft({ ...draft, text: e.target.value })}
          onKeyDown={handleKeyDown}
          onBlur={() => save(false)}
        />
      )}
    </li>
  );
}

function sameRow(a, b) {
  return (
    a.todo.id === b.todo.id &&
    a.todo.title === b.todo.title &&
    a.todo.completed === b.todo.completed &&
    Boolean(a.todo.pending) === Boolean(b.todo.pending) &&
    a.todo.by === b.todo.by &&
    a.author === b.author &&
    a.editor === b.editor &&
    a.onEditing === b.onEditing &&
    a.readOnly === b.readOnly &&
    a.reopen === b.reopen &&
    a.onToggle === b.onToggle &&
    a.onDestroy === b.onDestroy &&
    a.onSaveTitle === b.onSaveTitle &&
    a.editBase === b.editBase &&
    a.onLostDraft === b.onLostDraft &&
    a.onKeepDraft === b.onKeepDraft
  );
}

export const TodoItem = memo(TodoItemView, sameRow);
