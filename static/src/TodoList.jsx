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

export const CONFLICT_MESSAGE = 'This todo was changed elsewhere; showing the newer title.';

const newId = () =>
  globalThis.crypto?.randomUUID?.() ??
  'xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx'.replace(/[xy]/g, (c) => {
    const r = (Math.random() * 16) | 0;
    return (c === 'x' ? r : (r & 0x3) | 0x8).toString(16);
  });

function quote(text) {
  return `“${text.length > 80 ? text.slice(0, 79) + '…' : text}”`;
}

export function TodoList({
  listKey, list, listsSupported, path, hashPrefix, filter, user, ops, enqueue, onSettled, onStreamLive, onStatus,
  onSessionLost, onGone, notice, setNotice,
}) {
  const { model, fold } = useTodoStream({ path, onStatus, onSessionLost, onGone, onLive: onStreamLive });
  const role = list?.role ?? (listKey === 'personal' ? 'owner' : 'viewer');
  const writable = canWrite(role);
  const [reopen, setReopen] = useState(null); // { id, text, nonce }: put a failed edit back in its field

  const myOps = useMemo(() => ops.filter((op) => op.listKey === listKey), [ops, listKey]);
  const todos = useMemo(() => applyPending(model.todos, myOps), [model.todos, myOps]);
  const confirmed = useLatest(model.todos);
  const shown = useLatest(todos);

  const write = useCallback((op) => {
    setNotice(null);
    return enqueue({ ...op, listKey, path });
  }, [enqueue, listKey, path, setNotice]);

  // ---- answers from the server to this list's writes ----
  useEffect(
    () =>
      onSettled((op, outcome) => {
        if (op.listKey !== listKey) return;
        if ('reply' in outcome) {
          const { reply } = outcome;
          if (op.kind === 'delete') fold({ type: 'forget', id: op.id });
          else if (op.kind === 'toggleAll') fold({ type: 'todos', todos: reply?.todos ?? [] });
          else if (op.kind === 'clearCompleted') fold({ type: 'cleared', rev: reply?.rev ?? 0 });
          else if (reply?.id) fold({ type: 'todo', todo: reply });
          return;
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
          return;
        }
        const { error } = outcome;
        if (!error) return;
        const title = op.kind === 'update' ? op.fields.title : null;
        if (error.status === 404 && op.kind === 'update') {
          setNotice({
            kind: 'error',
            text: title != null
              ? `This todo was deleted elsewhere. Your title was ${quote(title)}.`
              : 'This todo was deleted elsewhere.',
            actions: title != null
              ? [{ label: 'Add it again', run: () => write({ kind: 'create', todo: freshTodo(title) }) }]
              : [],
          });
        } else if (title != null) {
          // Keep the user's text: back into the edit field, with the reason.
          setNotice(errorNotice(error));
          setReopen({ id: op.id, text: title, nonce: Date.now() });
        } else if (op.kind === 'create') {
          setNotice({
            kind: 'error',
            text: `${error.message} Not added: ${quote(op.todo.title)}.`,
          });
        } else {
          setNotice(errorNotice(error));
        }
      }),
    [onSettled, listKey, fold, setNotice, write],
  );

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

  const destroyTodo = useCallback((id) => write({ kind: 'delete', id }), [write]);

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
    if (title === '') write({ kind: 'delete', id, base: guard });
    else write({ kind: 'update', id, fields: { title }, base: guard });
  }, [write]);

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
  const toggleAll = () => write({ kind: 'toggleAll', completed: remaining > 0 });
  const clearCompleted = () => write({ kind: 'clearCompleted' });

  const visibleTodos = useMemo(() => filterTodos(todos, filter), [todos, filter]);
  const loading = !model.synced && todos.length === 0;

  return (
    <>
      <section className="todoapp" aria-label={list?.title ?? 'Todos'}>
        {/* Inside the card: the absolutely placed "todos" heading covers the space above it. */}
        {/* Shown while the lists load too, at the same height: nothing below jumps. */}
        {listsSupported !== false && <ListBar list={list} user={user} setNotice={setNotice} />}
        {/* Above the header, not below: todomvc-app-css positions the
            toggle-all chevron 65px above section.main, i.e. over whatever
            sits between the input and the list. */}
        {notice && <Notice {...notice} onDismiss={() => setNotice(null)} />}
        <header className="header">
          <h1>todos</h1>
          {writable ? (
            <NewTodoInput onAdd={addTodo} />
          ) : (
            <p className="read-only-note">
              You can view this list; only its owner and editors can change it.
            </p>
          )}
        </header>
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
                    reopen={reopen?.id === todo.id ? reopen : null}
                    onToggle={toggleTodo}
                    onDestroy={destroyTodo}
                    onSaveTitle={saveTitle}
                    editBase={editBase}
                    onLostDraft={lostDraft}
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
