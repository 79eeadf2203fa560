// The signed-in screen. The list on screen comes only from the stream; the
// handlers below just send REST writes, and the stream echoes their effect
// back within milliseconds (to this tab and every other one).
import { useCallback, useState } from 'react';
import * as api from './api.js';
import { activeCount, allCompleted, completedCount, filterTodos } from './model.js';
import { useTodoStream } from './useTodoStream.js';
import { useHashFilter } from './useHashFilter.js';
import { SessionBar } from './SessionBar.jsx';
import { NewTodoInput } from './NewTodoInput.jsx';
import { Notice } from './Notice.jsx';
import { TodoItem } from './TodoItem.jsx';
import { TodoFooter } from './TodoFooter.jsx';

export const CONFLICT_MESSAGE = 'This todo was changed elsewhere; showing the newer title.';

export function TodoApp({ user, onSignedOut, onSessionLost }) {
  const { todos, status, mergeTodo } = useTodoStream({ onSessionLost });
  const filter = useHashFilter();
  const [notice, setNotice] = useState(null); // null | { kind: 'conflict' | 'error', text }

  // Run one REST write; a new action replaces any old notice, a failure shows
  // one, and a 401 means the session ended underneath us.
  const perform = useCallback(
    async (write, { onConflict } = {}) => {
      setNotice(null);
      try {
        await write();
        return true;
      } catch (error) {
        if (error.status === 401) onSessionLost();
        else if (error.status === 412 && onConflict) onConflict();
        else setNotice({ kind: 'error', text: error.message });
        return false;
      }
    },
    [onSessionLost],
  );

  const addTodo = (title) => perform(() => api.createTodo(title));
  const toggleTodo = (todo) => perform(() => api.updateTodo(todo.id, { completed: !todo.completed }));
  const destroyTodo = (todo) => perform(() => api.deleteTodo(todo.id));
  const toggleAll = () => perform(() => api.setAllCompleted(!allCompleted(todos)));
  const clearCompleted = () => perform(() => api.clearCompleted());

  // An edit is conditional on the todo's rev from when editing began, so a
  // change made elsewhere meanwhile is not overwritten (412). The stream has
  // normally delivered the newer title already; the GET covers a lagging one.
  function saveTitle(todo, text, { baseRev, baseTitle }) {
    const title = text.trim();
    if (title === baseTitle) return;
    const onConflict = () => {
      setNotice({ kind: 'conflict', text: CONFLICT_MESSAGE });
      api.getTodo(todo.id).then(mergeTodo, () => {}); // a 404 arrives as a stream delete
    };
    if (title === '') perform(() => api.deleteTodo(todo.id, { rev: baseRev }), { onConflict });
    else perform(() => api.updateTodo(todo.id, { title }, { rev: baseRev }), { onConflict });
  }

  async function signOut() {
    try {
      await api.signOut();
    } catch (error) {
      // 401: already signed out, which is what we wanted.
      if (error.status !== 401) return setNotice({ kind: 'error', text: error.message });
    }
    onSignedOut();
  }

  const visibleTodos = filterTodos(todos, filter);
  const remaining = activeCount(todos);

  return (
    <>
      <SessionBar username={user.username} status={status} onSignOut={signOut} />
      <section className="todoapp">
        {/* Above the header, not below: todomvc-app-css positions the
            toggle-all chevron 65px above section.main, i.e. over whatever
            sits between the input and the list. */}
        {notice && <Notice {...notice} onDismiss={() => setNotice(null)} />}
        <header className="header">
          <h1>todos</h1>
          <NewTodoInput onAdd={addTodo} />
        </header>
        {todos.length > 0 && (
          <>
            <section className="main">
              <input
                id="toggle-all"
                className="toggle-all"
                type="checkbox"
                checked={remaining === 0}
                onChange={toggleAll}
              />
              <label htmlFor="toggle-all">Mark all as complete</label>
              <ul className="todo-list">
                {visibleTodos.map((todo) => (
                  <TodoItem
                    key={todo.id}
                    todo={todo}
                    onToggle={toggleTodo}
                    onDestroy={destroyTodo}
                    onSaveTitle={saveTitle}
                  />
                ))}
              </ul>
            </section>
            <TodoFooter
              activeCount={remaining}
              completedCount={completedCount(todos)}
              filter={filter}
              onClearCompleted={clearCompleted}
            />
          </>
        )}
      </section>
    </>
  );
}
