// React binding of stream.js + model.js for one list: the stream's messages
// are folded in once per animation frame (a toggle-all's 1,000 changes are one
// render, not 1,000); when the stream is unavailable the list is polled over
// REST instead; REST replies to our own writes are folded in as they come.
import { useCallback, useEffect, useReducer, useRef, useState } from 'react';
import { presenceFrame } from './people.js';
import { listTodos } from './api.js';
import {
  applyMessages,
  clearedCompleted,
  forgetTodo,
  initialState,
  mergeFetchedTodo,
  mergeFetchedTodos,
} from './model.js';
import { openTodoStream } from './stream.js';
import { frameBatcher } from './batch.js';
import { useLatest } from './hooks.js';

export const POLL_MS = 5000;

function reduce(state, action) {
  switch (action.type) {
    case 'batch':
      return applyMessages(state, action.messages);
    case 'todo':
      return mergeFetchedTodo(state, action.todo);
    case 'todos':
      return mergeFetchedTodos(state, action.todos);
    case 'forget':
      return forgetTodo(state, action.id);
    case 'cleared':
      return clearedCompleted(state, action.rev);
    default:
      return state;
  }
}

// The presence beat (docs/api.md, "Presence"): the server drops a tab not heard from in 30 s.
export const BEAT_MS = 10_000;

/**
 * `presence`: take part in the list's presence (shared lists): `people` is the
 * latest presence message's users, `setEditing(id | null)` says what this tab edits.
 * `member` is the latest `member` message (someone joined, changed role or left).
 */
export function useTodoStream({ path, presence = false, onStatus, onSessionLost, onGone, onLive }) {
  const [model, dispatch] = useReducer(reduce, initialState);
  const [status, setStatus] = useState('connecting');
  const [people, setPeople] = useState([]);
  const [member, setMember] = useState(null);
  const callbacks = useLatest({ onStatus, onSessionLost, onGone, onLive });
  const editing = useRef(null);
  const beat = useRef(() => {});

  useEffect(() => {
    const batcher = frameBatcher((messages) => dispatch({ type: 'batch', messages }));
    let poller = null;
    let stopped = false;
    const poll = async () => {
      try {
        const reply = await listTodos({ base: path });
        if (stopped) return;
        batcher.push({ type: 'snapshot', todos: reply.todos, rev: reply.rev });
        batcher.push({ type: 'ready', rev: reply.rev });
      } catch (error) {
        if (stopped) return;
        if (error.status === 401) callbacks.current.onSessionLost();
        else if (error.status === 404) callbacks.current.onGone(4404);
      }
    };
    const stream = openTodoStream({
      path,
      onMessage: (message) => {
        if (message.type === 'presence') setPeople(message.users ?? []);
        else if (message.type === 'member') setMember(message);
        else batcher.push(message);
      },
      onStatus: (next) => {
        setStatus(next);
        callbacks.current.onStatus?.(next);
        clearInterval(poller);
        poller = null;
        if (next === 'unavailable') {
          poll();
          poller = setInterval(poll, POLL_MS);
        }
        if (next === 'live') {
          beat.current();
          callbacks.current.onLive?.();
        } else setPeople([]);
      },
      onSessionLost: () => callbacks.current.onSessionLost(),
      onGone: (code) => callbacks.current.onGone(code),
    });
    beat.current = presence ? () => stream.send(presenceFrame(editing.current)) : () => {};
    const beater = presence && setInterval(() => beat.current(), BEAT_MS);
    return () => {
      stopped = true;
      clearInterval(poller);
      clearInterval(beater);
      beat.current = () => {};
      batcher.cancel();
      stream.close(); // a clean close: the server takes us out of the presence at once
    };
  }, [path, presence, callbacks]);

  const fold = useCallback((action) => dispatch(action), []);
  // A row says when its edit starts (on) and ends; another row's start wins over an old end.
  const setEditing = useCallback((id, on) => {
    const next = on ? id : editing.current === id ? null : editing.current;
    if (next === editing.current) return;
    editing.current = next;
    beat.current();
  }, []);
  return { model, status, fold, people, member, setEditing };
}
