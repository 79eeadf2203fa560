// React binding of stream.js + model.js for one list: the stream's messages
// are folded in once per animation frame (a toggle-all's 1,000 changes are one
// render, not 1,000); when the stream is unavailable the list is polled over
// REST instead; REST replies to our own writes are folded in as they come.
import { useCallback, useEffect, useReducer, useState } from 'react';
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

export function useTodoStream({ path, onStatus, onSessionLost, onGone, onLive }) {
  const [model, dispatch] = useReducer(reduce, initialState);
  const [status, setStatus] = useState('connecting');
  const callbacks = useLatest({ onStatus, onSessionLost, onGone, onLive });

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
      onMessage: (message) => batcher.push(message),
      onStatus: (next) => {
        setStatus(next);
        callbacks.current.onStatus?.(next);
        clearInterval(poller);
        poller = null;
        if (next === 'unavailable') {
          poll();
          poller = setInterval(poll, POLL_MS);
        }
        if (next === 'live') callbacks.current.onLive?.();
      },
      onSessionLost: () => callbacks.current.onSessionLost(),
      onGone: (code) => callbacks.current.onGone(code),
    });
    return () => {
      stopped = true;
      clearInterval(poller);
      batcher.cancel();
      stream.close();
    };
  }, [path, callbacks]);

  const fold = useCallback((action) => dispatch(action), []);
  return { model, status, fold };
}
