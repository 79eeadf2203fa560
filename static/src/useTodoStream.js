// React binding of stream.js + model.js: opens the stream for the lifetime of
// the component and folds every message into the model with a reducer.
import { useCallback, useEffect, useReducer, useRef, useState } from 'react';
import { applyMessage, initialState, mergeFetchedTodo } from './model.js';
import { openTodoStream } from './stream.js';

// A local action, kept apart from the server's message types by being a Symbol.
const MERGE_FETCHED = Symbol('merge fetched todo');

function reduce(state, action) {
  return action.type === MERGE_FETCHED ? mergeFetchedTodo(state, action.todo) : applyMessage(state, action);
}

export function useTodoStream({ onSessionLost }) {
  const [model, dispatch] = useReducer(reduce, initialState);
  const [status, setStatus] = useState('connecting');

  // The stream lives as long as the component; read the latest callback
  // through a ref instead of reconnecting whenever the parent re-renders.
  const sessionLost = useRef(onSessionLost);
  useEffect(() => {
    sessionLost.current = onSessionLost;
  });

  useEffect(() => {
    const stream = openTodoStream({
      onMessage: dispatch,
      onStatus: setStatus,
      onSessionLost: () => sessionLost.current(),
    });
    return () => stream.close();
  }, []);

  const mergeTodo = useCallback((todo) => dispatch({ type: MERGE_FETCHED, todo }), []);

  return { todos: model.todos, synced: model.synced, status, mergeTodo };
}
