// The signed-in screen: the user's lists (navigation), the list in the URL,
// the outbox every write goes through, the connection status and notices.
import { useCallback, useEffect, useRef, useState } from 'react';
import * as api from './api.js';
import { Outbox, isTransient, memoryStorage, newKey as newId, resolvePrecondition } from './outbox.js';
import { indexedDbStorage } from './idb.js';
import { exclusive } from './locks.js';
import { keptText, refusedEntry } from './refused.js';
import { RefusedPanel } from './RefusedPanel.jsx';
import { routeHash } from './model.js';
import { useLatest, useOnline, useRoute } from './hooks.js';
import { useLists } from './useLists.js';
import { SessionBar } from './SessionBar.jsx';
import { ListNav } from './ListNav.jsx';
import { TodoList } from './TodoList.jsx';
import { errorNotice } from './Notice.jsx';

export const PERSONAL = 'personal';
let noticeIds = 0;

/** Perform one outbox op over REST; a 412 is resolved here (see outbox.resolvePrecondition). */
export async function sendOp(op) {
  const base = op.path;
  const key = op.key;
  try {
    switch (op.kind) {
      case 'create':
        return { reply: await api.createTodo(op.todo.title, { id: op.todo.id, completed: op.todo.completed, base, key }) };
      case 'update':
        return { reply: await api.updateTodo(op.id, op.fields, { rev: op.base?.rev, base, key }) };
      case 'delete':
        await api.deleteTodo(op.id, { rev: op.base?.rev, base, key });
        return { reply: null };
      case 'toggleAll':
        return { reply: await api.setAllCompleted(op.completed, { base, key }) };
      case 'clearCompleted':
        return { reply: await api.clearCompleted({ base, key }) };
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
  // Notices pile up (several conflicts at once are each shown); any new action clears them.
  const [notices, setNotices] = useState([]);
  const setNotice = useCallback((notice) => {
    setNotices((all) => {
      if (!notice) return all.length ? [] : all;
      const rest = all.filter((n) => n.text !== notice.text);
      return [...rest, { ...notice, id: ++noticeIds }];
    });
  }, []);
  const [outboxState, setOutboxState] = useState({ ops: [], waiting: false });
  const [refused, setRefused] = useState([]);
  const refusedStore = useRef(null);
  const [todoStatus, setTodoStatus] = useState('connecting');
  const outboxRef = useRef(null);
  const settledHandlers = useRef(new Set());
  const isConfirmed = useLatest(confirmed);

  // ---- the outbox: one per signed-in user, persisted in IndexedDB, shared by their tabs ----
  useEffect(() => {
    const storage = indexedDbStorage(user.id) ?? memoryStorage();
    const channel = globalThis.BroadcastChannel ? new BroadcastChannel(`todopy-outbox-${user.id}`) : null;
    const loadRefused = () => storage.refused.load().then(setRefused, () => {});
    refusedStore.current = {
      add: (entry) => {
        setRefused((all) => [...all.filter((e) => e.seq !== entry.seq), entry]);
        storage.refused.put(entry).then(() => channel?.postMessage('refused'), () => {});
      },
      remove: (entry) => {
        setRefused((all) => all.filter((e) => e.seq !== entry.seq));
        storage.refused.remove(entry.seq).then(() => channel?.postMessage('refused'), () => {});
      },
    };
    const outbox = new Outbox({
      storage,
      // One tab sends at a time; the others follow its progress through the channel.
      lock: exclusive(`todopy-outbox-${user.id}`),
      onStored: () => channel?.postMessage('ops'),
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
        let kept = false;
        for (const handler of settledHandlers.current) kept = handler(op, outcome) || kept;
        // Refused for good and not back in the user's hands: keep it, with its content.
        if (!kept && (outcome.error || outcome.conflict)) {
          refusedStore.current.add(refusedEntry(op, outcome.error?.message ?? 'Someone changed this todo meanwhile.'));
        }
      },
      onChange: () => setOutboxState({ ops: outbox.ops, waiting: outbox.waiting }),
    });
    outboxRef.current = outbox;
    outbox.load().catch(() => {});
    loadRefused();
    if (channel) {
      channel.onmessage = (event) => (event.data === 'refused' ? loadRefused() : outbox.refresh());
    }
    const kick = () => outbox.kick();
    window.addEventListener('online', kick);
    return () => {
      window.removeEventListener('online', kick);
      channel?.close();
      outbox.close();
    };
  }, [user.id, sessionLost]);

  const keepText = useCallback((text, listTitle, reason) => {
    refusedStore.current?.add(keptText(text, listTitle, reason));
  }, []);

  const enqueue = useCallback((op) => outboxRef.current?.enqueue(op), []);
  const onSettled = useCallback((handler) => {
    settledHandlers.current.add(handler);
    return () => settledHandlers.current.delete(handler);
  }, []);
  const kickOutbox = useCallback(() => outboxRef.current?.kick(), []);

  // ---- lists ----
  // Added to a list by someone: say who (their joining is in the list's activity), offer to open or leave it.
  const onAdded = async (list) => {
    let by = null;
    try {
      by = (await api.getActivity(list.id)).changes
        .find((c) => c.kind === 'member' && c.op === 'insert' && c.member?.username === user.username)?.by;
    } catch {
      // not said, then
    }
    const title = `“${list.title}”`;
    setNotice({
      kind: 'info',
      text: `${by ?? 'Someone'} added you to ${title} as ${list.role === 'viewer' ? 'a viewer' : 'an editor'}.`,
      actions: [
        { label: 'Open list', run: () => (window.location.hash = routeHash(list.id)) },
        {
          label: 'Leave list',
          run: () => api.removeMember(list.id, user.username).then(
            () => setNotice({ kind: 'info', text: `You left ${title}.` }),
            (error) => setNotice(errorNotice(error)),
          ),
        },
      ],
    });
  };
  const { lists, supported, known } = useLists({ onSessionLost: () => sessionLost.current(), onAdded });
  const personal = lists?.find((l) => l.personal) ?? null;
  const isPersonal = route.listId == null || (personal && route.listId === personal.id);
  const listKey = isPersonal ? PERSONAL : route.listId;
  const current = isPersonal
    ? personal ?? { id: null, title: 'Todos', role: 'owner', personal: true }
    : lists?.find((l) => l.id === route.listId) ?? null;

  // Remember where we are, to notice a list vanishing from under us.
  const shown = useRef(null);
  const goneTimer = useRef(null);
  useEffect(() => () => clearTimeout(goneTimer.current), []);
  const leaveList = useCallback((text) => {
    setNotice(null); // what was said about the list we leave is stale now
    setNotice({ kind: 'info', text });
    window.location.hash = '#/';
  }, []);
  useEffect(() => {
    if (!lists) return;
    if (!isPersonal && !lists.some((l) => l.id === route.listId)) {
      const was = shown.current?.id === route.listId ? shown.current : null;
      if (was) {
        // The list's own stream says why (4404: deleted) a moment later, if it can.
        clearTimeout(goneTimer.current);
        goneTimer.current = setTimeout(() => leaveList(`You no longer have access to “${was.title}”.`), 1500);
        return; // still "shown": the stream's close names it
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
      clearTimeout(goneTimer.current);
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
    if (status === 'live' && notices.some((n) => n.cause === 'network')) {
      setNotices((all) => all.filter((n) => n.cause !== 'network'));
    }
  }, [status, notices]);
  const ops = outboxState.ops;

  // A refused write's text, added as a new todo to the list the user picked.
  const addAgain = useCallback((entry, target) => {
    const list = lists?.find((l) => (l.personal ? 'personal' : l.id) === target.key);
    outboxRef.current?.enqueue({
      kind: 'create', listKey: target.key, path: api.listTodosPath(target.id), listTitle: list?.title ?? target.title,
      todo: { id: newId(), title: entry.text.trim().slice(0, 512), completed: false, created_time: new Date().toISOString() },
    });
    refusedStore.current?.remove(entry);
  }, [lists]);

  return (
    <>
      <SessionBar
        username={user.username}
        status={status}
        unsent={ops.length}
        ops={ops}
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
          notices={notices}
          setNotice={setNotice}
          dismissNotice={(id) => setNotices((all) => all.filter((n) => n.id !== id))}
          keepText={keepText}
          routeHash={routeHash}
        />
        <RefusedPanel
          entries={refused}
          lists={lists}
          currentKey={listKey}
          onAdd={addAgain}
          onDismiss={(entry) => refusedStore.current?.remove(entry)}
        />
      </main>
      <footer className="info">
        {(current?.role ?? 'owner') !== 'viewer' && <p>Double-click to edit a todo (or focus it and press Enter or F2)</p>}
        <p>
          Part of <a href="https://todomvc.com">TodoMVC</a>
        </p>
      </footer>
    </>
  );
}
