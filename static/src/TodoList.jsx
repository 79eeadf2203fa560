// One list on screen: its stream-driven model with the outbox's pending writes
// laid over it (so a click shows at once), the TodoMVC card, and the list's
// own bar (title, rename, share, delete).
import { memo, useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { activeCount, applyPending, completedCount, filterTodos } from './model.js';
import { pickBase } from './outbox.js';
import { canManage, canWrite } from './lists.js';
import { useTodoStream } from './useTodoStream.js';
import { useLatest } from './hooks.js';
import { NewTodoInput } from './NewTodoInput.jsx';
import { Notice, errorNotice } from './Notice.jsx';
import { TodoItem } from './TodoItem.jsx';
import { TodoFooter } from './TodoFooter.jsx';
import { ListBar } from './ListBar.jsx';
import { describeAction, undoOps } from './undo.js';
import { arrivals, editors, others } from './people.js';

export const UNDO_MS = 10_000;
export const CONFLICT_MESSAGE = 'This todo was changed elsewhere; showing the newer title.';

const newId = () =>
  globalThis.crypto?.randomUUID?.() ??
  'xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx'.replace(/[xy]/g, (c) => {
    const r = (Math.random() * 16) | 0;
    return (c === 'x' ? r : (r & 0x3) | 0x8).toString(16);
  });

function quote(text) {
  return `“${text}”`;
}

export function TodoList({
  listKey, list, listsSupported, path, hashPrefix, filter, user, ops, enqueue, onSettled, onStreamLive, onStatus,
  onSessionLost, onGone, notices, setNotice, dismissNotice, keepText,
}) {
  const { model, fold, people, member, setEditing } = useTodoStream({
    path, presence: listKey !== 'personal', onStatus, onSessionLost, onGone, onLive: onStreamLive,
  });
  const me = user?.username;
  const here = useMemo(() => others(people, me), [people, me]);
  const editing = useMemo(() => editors(people, me), [people, me]);
  const role = list?.role ?? (listKey === 'personal' ? 'owner' : 'viewer');
  const writable = canWrite(role);
  const roleRef = useLatest(role);
  const [reopen, setReopen] = useState(null); // { id, text, nonce }: put a failed edit back in its field

  const myOps = useMemo(() => ops.filter((op) => op.listKey === listKey), [ops, listKey]);
  const todos = useMemo(() => applyPending(model.todos, myOps), [model.todos, myOps]);
  const confirmed = useLatest(model.todos);
  const shown = useLatest(todos);

  const listTitle = list?.title ?? 'Todos';
  const mine = useRef(new Set()); // ids this page created or deleted: not announced as others' doing
  const write = useCallback((op) => {
    setNotice(null);
    const id = op.id ?? op.todo?.id;
    if (id) mine.current.add(id);
    // The todo's title and the list's go with the write: if it is refused, the user is told what it was.
    const label = op.id ? shown.current.find((t) => t.id === op.id)?.title : undefined;
    return enqueue({ ...op, listKey, path, listTitle, label });
  }, [enqueue, listKey, path, listTitle, setNotice, shown]);

  // ---- a role taken away: said plainly (the open edit's text is kept by its row) ----
  const wasWritable = useRef(writable);
  useEffect(() => {
    if (wasWritable.current && !writable && list) {
      setNotice({ kind: 'info', text: `Your role in “${list.title}” is now ${role}: you can view it but no longer change it.` });
    }
    wasWritable.current = writable;
  }, [writable, list, role, setNotice]);
  const keepDraft = useCallback(
    (text) => keepText(text, listTitle, 'Your role changed while you were editing; this text was not saved.'),
    [keepText, listTitle],
  );

  // ---- others' adds and deletes, said to screen readers (a polite live region) ----
  const [heard, setHeard] = useState('');
  const before = useRef(null);
  useEffect(() => {
    if (!model.synced) return;
    const now = new Map(model.todos.map((t) => [t.id, t.title]));
    const was = before.current;
    before.current = now;
    if (!was) return;
    const news = [];
    for (const [id, title] of now) if (!was.has(id) && !mine.current.has(id)) news.push(`Added “${title}”`);
    for (const [id, title] of was) if (!now.has(id) && !mine.current.has(id)) news.push(`Deleted “${title}”`);
    if (news.length) setHeard(news.length > 3 ? `${news.length} todos added or deleted elsewhere` : news.join('. '));
  }, [model.todos, model.synced]);
  // ... and who opens or leaves the list.
  const peopleBefore = useRef([]);
  useEffect(() => {
    const said = arrivals(peopleBefore.current, people, me);
    peopleBefore.current = people;
    if (said) setHeard(said);
  }, [people, me]);

  // ---- someone else replaced a title this page wrote: say so (once) ----
  const myTitles = useRef(new Map()); // todo id -> the title our last answered write gave it
  useEffect(() => {
    for (const [id, mine] of myTitles.current) {
      const now = model.todos.find((t) => t.id === id);
      if (!now) myTitles.current.delete(id);
      else if (now.title !== mine && !myOps.some((op) => op.id === id)) {
        myTitles.current.delete(id);
        setNotice({ kind: 'info', text: `Your title ${quote(mine)} was replaced elsewhere by ${quote(now.title)}.` });
      }
    }
  }, [model.todos, myOps, setNotice]);

  // ---- answers from the server to this list's writes ----
  // Returns true when the user still has what the write carried (a conflict
  // notice, an edit reopened); anything else refused is kept by the Workspace.
  useEffect(
    () =>
      onSettled((op, outcome) => {
        if (op.listKey !== listKey) return false;
        if ('reply' in outcome) {
          const { reply } = outcome;
          if (op.kind === 'delete') fold({ type: 'forget', id: op.id });
          else if (op.kind === 'toggleAll') fold({ type: 'todos', todos: reply?.todos ?? [] });
          else if (op.kind === 'clearCompleted') fold({ type: 'cleared', rev: reply?.rev ?? 0 });
          else if (reply?.id) fold({ type: 'todo', todo: reply });
          if (op.kind === 'update' && op.fields.title != null && reply?.id) myTitles.current.set(reply.id, reply.title);
          return false;
        }
        if (outcome.conflict) {
          const current = outcome.conflict === true ? null : outcome.conflict;
          if (current) fold({ type: 'todo', todo: current });
          const mine = op.kind === 'update' ? op.fields.title : null;
          setNotice({
            kind: 'conflict',
            text: mine != null ? `${CONFLICT_MESSAGE} Your title was ${quote(mine)}.` : CONFLICT_MESSAGE,
            actions:
              mine != null && current
                ? [{
                  label: 'Use my title',
                  run: () => write({ kind: 'update', id: op.id, fields: { title: mine }, base: pickBase(current) }),
                }]
                : [],
          });
          return true;
        }
        const { error } = outcome;
        const title = op.kind === 'update' ? op.fields.title : null;
        if (error && title != null && canWrite(roleRef.current) && shown.current.some((t) => t.id === op.id)) {
          // Keep the user's text: back into the edit field, with the reason.
          setNotice(errorNotice(error));
          setReopen({ id: op.id, text: title, nonce: Date.now() });
          return true;
        }
        return false;
      }),
    [onSettled, listKey, fold, setNotice, write, shown, roleRef],
  );

  // ---- undo: the last undoable action, offered for ~10 s (button, or Ctrl+Z) ----
  const [undo, setUndo] = useState(null); // { action, text, at }
  const undoRef = useLatest(undo);
  const offerUndo = useCallback((action) => setUndo({ action, text: describeAction(action), at: Date.now() }), []);
  useEffect(() => {
    if (!undo) return undefined;
    const timer = setTimeout(() => setUndo(null), UNDO_MS);
    return () => clearTimeout(timer);
  }, [undo]);
  const runUndo = useCallback(() => {
    const offered = undoRef.current;
    if (!offered) return;
    setUndo(null);
    // As the user sees the todos, guarded by the server's latest revs.
    const now = shown.current.map((t) => ({ ...t, rev: confirmed.current.find((c) => c.id === t.id)?.rev ?? null }));
    const { ops, skipped } = undoOps(offered.action, now);
    ops.forEach((op) => write(op));
    if (skipped) {
      setNotice({ kind: 'info', text: `Not undone: ${skipped === 1 ? 'a todo was' : `${skipped} todos were`} changed elsewhere since.` });
    }
  }, [undoRef, shown, confirmed, write, setNotice]);
  useEffect(() => {
    const onKey = (event) => {
      if (event.key !== 'z' || !(event.ctrlKey || event.metaKey) || event.shiftKey || event.altKey) return;
      if (event.target.closest?.('input, textarea, select, [contenteditable]') || !undoRef.current) return;
      event.preventDefault();
      runUndo();
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [runUndo, undoRef]);

  // ---- actions (all optimistic: they go through the outbox) ----
  const freshTodo = (title) => ({
    id: newId(),
    title,
    completed: false,
    created_time: new Date().toISOString(),
  });

  const addTodo = useCallback((title) => {
    write({ kind: 'create', todo: freshTodo(title) });
    return true;
  }, [write]);

  const toggleTodo = useCallback((id) => {
    const todo = shown.current.find((t) => t.id === id);
    if (todo) write({ kind: 'update', id, fields: { completed: !todo.completed } });
  }, [write, shown]);

  const destroyTodo = useCallback((id) => {
    const todo = shown.current.find((t) => t.id === id);
    write({ kind: 'delete', id });
    if (todo) offerUndo({ kind: 'delete', todos: [todo] });
  }, [write, shown, offerUndo]);

  // What a guarded edit is made against: the title the user saw (it may
  // include our own pending writes) and the server's latest rev of the todo.
  const editBase = useCallback((id) => {
    const seen = shown.current.find((t) => t.id === id);
    const server = confirmed.current.find((t) => t.id === id);
    if (!seen) return null;
    return { title: seen.title, completed: seen.completed, rev: server?.rev ?? null };
  }, [shown, confirmed]);

  const saveTitle = useCallback((id, text, base) => {
    const title = text.trim();
    if (!base || title === base.title) return;
    const guard = base.rev == null ? undefined : base;
    const todo = shown.current.find((t) => t.id === id);
    if (title === '') {
      write({ kind: 'delete', id, base: guard });
      if (todo) offerUndo({ kind: 'delete', todos: [{ ...todo, title: base.title }] });
    } else {
      write({ kind: 'update', id, fields: { title }, base: guard });
      offerUndo({ kind: 'title', id, from: base.title, to: title });
    }
  }, [write, shown, offerUndo]);

  // A row removed from under its editor (deleted elsewhere): keep the text.
  const lostDraft = useCallback((id, text) => {
    // Decide once this render has settled (the row's unmount runs before it).
    setTimeout(() => {
      if (shown.current.some((t) => t.id === id) || !text.trim()) return;
      setNotice({
      kind: 'error',
      text: `The todo you were editing was deleted elsewhere. Your text was ${quote(text)}.`,
        actions: [{ label: 'Add it again', run: () => write({ kind: 'create', todo: freshTodo(text.trim()) }) }],
      });
    }, 50);
  }, [shown, setNotice, write]);

  const remaining = activeCount(todos);
  const toggleAll = () => {
    const completed = remaining > 0;
    const was = todos.filter((t) => t.completed !== completed).map((t) => ({ id: t.id, completed: t.completed }));
    write({ kind: 'toggleAll', completed });
    offerUndo({ kind: 'toggle', completed, was });
  };
  const clearCompleted = () => {
    const cleared = todos.filter((t) => t.completed);
    for (const t of cleared) mine.current.add(t.id);
    write({ kind: 'clearCompleted' });
    offerUndo({ kind: 'delete', todos: cleared });
  };

  const visibleTodos = useMemo(() => filterTodos(todos, filter), [todos, filter]);
  const loading = !model.synced && todos.length === 0;

  return (
    <>
      <section className="todoapp" aria-label={list?.title ?? 'Todos'}>
        {/* Inside the card: the absolutely placed "todos" heading covers the space above it. */}
        {/* Shown while the lists load too, at the same height: nothing below jumps. */}
        {/* First in the document, so that the page's headings are in order; the CSS places it. */}
        <h1>todos</h1>
        {listsSupported !== false && <ListBar list={list} user={user} setNotice={setNotice} people={here} member={member}
          rev={Math.max(model.rev, member?.rev ?? 0)} />}
        {/* Above the header, not below: todomvc-app-css positions the
            toggle-all chevron 65px above section.main, i.e. over whatever
            sits between the input and the list. */}
        {notices.map((n) => <Notice key={n.id} {...n} onDismiss={() => dismissNotice(n.id)} />)}
        {undo && (
          <div className="undo-bar" role="status">
            <span className="notice-text">{undo.text}</span>
            <button type="button" className="notice-action" name="undo" onClick={runUndo}>
              Undo
            </button>
            <button type="button" className="notice-dismiss" aria-label="Dismiss" onClick={() => setUndo(null)}>×</button>
          </div>
        )}
        <header className="header">
          {writable ? (
            <NewTodoInput onAdd={addTodo} />
          ) : (
            <p className="read-only-note">
              You can view this list; only its owner and editors can change it.
            </p>
          )}
        </header>
        <p className="visually-hidden heard" aria-live="polite">{heard}</p>
        {loading && (
          <p className="loading-todos" role="status">
            Loading todos…
          </p>
        )}
        {todos.length > 0 && (
          <>
            <section className="main">
              {writable && (
                <>
                  <input
                    id="toggle-all"
                    className="toggle-all"
                    type="checkbox"
                    checked={remaining === 0}
                    onChange={toggleAll}
                  />
                  <label htmlFor="toggle-all">Mark all as complete</label>
                </>
              )}
              <ul className="todo-list" aria-label="Todos">
                {visibleTodos.map((todo) => (
                  <TodoItem
                    key={todo.id}
                    todo={todo}
                    readOnly={!writable}
                    author={todo.by !== me ? todo.by : null}
                    editor={editing.get(todo.id)}
                    onEditing={setEditing}
                    reopen={reopen?.id === todo.id ? reopen : null}
                    onToggle={toggleTodo}
                    onDestroy={destroyTodo}
                    onSaveTitle={saveTitle}
                    editBase={editBase}
                    onLostDraft={lostDraft}
                    onKeepDraft={keepDraft}
                  />
                ))}
              </ul>
            </section>
            <TodoFooter
              activeCount={remaining}
              completedCount={completedCount(todos)}
              filter={filter}
              hashPrefix={hashPrefix}
              readOnly={!writable}
              onClearCompleted={clearCompleted}
            />
          </>
        )}
      </section>
    </>
  );
}

export default memo(TodoList);
