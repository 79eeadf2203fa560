// The signed-in screen: the user's lists (navigation), the list in the URL,
// the outbox every write goes through, the connection status and notices.
import { useCallback, useEffect, useRef, useState } from 'react';
import * as api from './api.js';
import { Outbox, isTransient, memoryStorage, resolvePrecondition } from './outbox.js';
import { indexedDbStorage } from './idb.js';
import { routeHash } from './model.js';
import { useLatest, useOnline, useRoute } from './hooks.js';
import { useLists } from './useLists.js';
import { SessionBar } from './SessionBar.jsx';
import { ListNav } from './ListNav.jsx';
import { TodoList } from './TodoList.jsx';
import { errorNotice } from './Notice.jsx';

export const PERSONAL = 'personal';

/** Perform one outbox op over REST; a 412 is resolved here (see outbox.resolvePrecondition). */
export async function sendOp(op) {
  const base = op.path;
  try {
    switch (op.kind) {
      case 'create':
        return { reply: await api.createTodo(op.todo.title, { id: op.todo.id, completed: op.todo.completed, base }) };
      case 'update':
        return { reply: await api.updateTodo(op.id, op.fields, { rev: op.base?.rev, base }) };
      case 'delete':
        await api.deleteTodo(op.id, { rev: op.base?.rev, base });
        return { reply: null };
      case 'toggleAll':
        return { reply: await api.setAllCompleted(op.completed, { base }) };
      case 'clearCompleted':
        return { reply: await api.clearCompleted({ base }) };
      default:
        return { reply: null };
    }
  } catch (error) {
    // A replayed delete whose first attempt did land: done.
    if (error.status === 404 && op.kind === 'delete') return { reply: null };
    if (error.status !== 412 || !op.base) throw error;
    let current;
    try {
      current = await api.getTodo(op.id, { base });
    } catch (failure) {
      if (failure.status === 404 && op.kind === 'delete') return { reply: null };
      throw failure;
    }
    const decision = resolvePrecondition(op, current);
    if (decision.retry) return { retry: decision.retry };
    if (decision.done) return { reply: current };
    return { conflict: current };
  }
}

export function Workspace({ user, confirmed = true, onSignedOut, onSessionLost }) {
  const route = useRoute();
  const online = useOnline();
  const sessionLost = useLatest(onSessionLost);
  const [notice, setNotice] = useState(null);
  const [outboxState, setOutboxState] = useState({ ops: [], waiting: false });
  const [todoStatus, setTodoStatus] = useState('connecting');
  const outboxRef = useRef(null);
  const settledHandlers = useRef(new Set());
  const isConfirmed = useLatest(confirmed);

  // ---- the outbox: one per signed-in user, persisted in IndexedDB ----
  useEffect(() => {
    const outbox = new Outbox({
      storage: indexedDbStorage(user.id) ?? memoryStorage(),
      // Unconfirmed (started offline as the last user): hold writes until the server knows us.
      isOnline: () => navigator.onLine !== false && isConfirmed.current,
      // A 401 keeps the write (for after signing in again) and ends the session.
      keep: (error) => isTransient(error) || error?.status === 401,
      send: async (op) => {
        try {
          return await sendOp(op);
        } catch (error) {
          if (error.status === 401) sessionLost.current();
          throw error;
        }
      },
      onSettled: (op, outcome) => {
        for (const handler of settledHandlers.current) handler(op, outcome);
      },
      onChange: () => setOutboxState({ ops: outbox.ops, waiting: outbox.waiting }),
    });
    outboxRef.current = outbox;
    outbox.load().catch(() => {});
    const kick = () => outbox.kick();
    window.addEventListener('online', kick);
    return () => {
      window.removeEventListener('online', kick);
      outbox.close();
    };
  }, [user.id, sessionLost]);

  const enqueue = useCallback((op) => outboxRef.current?.enqueue(op), []);
  const onSettled = useCallback((handler) => {
    settledHandlers.current.add(handler);
    return () => settledHandlers.current.delete(handler);
  }, []);
  const kickOutbox = useCallback(() => outboxRef.current?.kick(), []);

  // ---- lists ----
  const { lists, supported, known } = useLists({ onSessionLost: () => sessionLost.current() });
  const personal = lists?.find((l) => l.personal) ?? null;
  const isPersonal = route.listId == null || (personal && route.listId === personal.id);
  const listKey = isPersonal ? PERSONAL : route.listId;
  const current = isPersonal
    ? personal ?? { id: null, title: 'Todos', role: 'owner', personal: true }
    : lists?.find((l) => l.id === route.listId) ?? null;

  // Remember where we are, to notice a list vanishing from under us.
  const shown = useRef(null);
  const leaveList = useCallback((text) => {
    setNotice({ kind: 'info', text });
    window.location.hash = '#/';
  }, []);
  useEffect(() => {
    if (!lists) return;
    if (!isPersonal && !lists.some((l) => l.id === route.listId)) {
      const was = shown.current?.id === route.listId ? shown.current : null;
      if (was) {
        leaveList(`You no longer have access to “${was.title}”.`);
      } else {
        // Never seen here: maybe the lists stream has not told us yet. Ask.
        const wanted = route.listId;
        api.getList(wanted).then(
          (list) => known(list),
          (error) => {
            if (error.status === 404 && window.location.hash.includes(wanted)) {
              leaveList('That list does not exist or is not shared with you.');
            }
          },
        );
      }
    }
    shown.current = current;
  }, [lists, isPersonal, route.listId, current, leaveList, known]);

  const onListGone = useCallback(
    (code) => {
      const title = shown.current?.title ?? 'this list';
      leaveList(code === 4404 ? `“${title}” was deleted.` : `You no longer have access to “${title}”.`);
    },
    [leaveList],
  );

  async function signOut() {
    try {
      await api.signOut();
    } catch (error) {
      // 401: already signed out, which is what we wanted.
      if (error.status !== 401) return setNotice(errorNotice(error));
    }
    onSignedOut();
  }

  const status = online ? todoStatus : 'offline';
  useEffect(() => {
    if (confirmed) outboxRef.current?.kick();
  }, [confirmed]);

  // A notice about an unreachable server goes once the connection is back.
  useEffect(() => {
    if (status === 'live' && notice?.cause === 'network') setNotice(null);
  }, [status, notice]);
  const ops = outboxState.ops;

  return (
    <>
      <SessionBar
        username={user.username}
        status={status}
        unsent={ops.length}
        waiting={outboxState.waiting || status === 'offline'}
        onSignOut={signOut}
      />
      {supported !== false && (
        <ListNav
          lists={lists}
          currentId={current?.id ?? null}
          filter={route.filter}
          onError={(error) => setNotice(errorNotice(error))}
          onCreated={known}
        />
      )}
      <main>
        <TodoList
          key={listKey}
          listKey={listKey}
          list={current}
          listsSupported={supported}
          path={api.listTodosPath(isPersonal ? null : route.listId)}
          hashPrefix={route.listId == null ? null : route.listId}
          filter={route.filter}
          user={user}
          ops={ops}
          enqueue={enqueue}
          onSettled={onSettled}
          onStreamLive={kickOutbox}
          onStatus={setTodoStatus}
          onSessionLost={() => sessionLost.current()}
          onGone={onListGone}
          notice={notice}
          setNotice={setNotice}
          routeHash={routeHash}
        />
      </main>
      <footer className="info">
        <p>Double-click to edit a todo (or focus it and press Enter or F2)</p>
        <p>
          Part of <a href="https://todomvc.com">TodoMVC</a>
        </p>
      </footer>
    </>
  );
}
