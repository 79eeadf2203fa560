// The user's lists, live from the lists stream (`/api/lists/`): a list shared
// with them appears, one they lose disappears, a rename shows at once. A
// server without lists (404) leaves `supported` false: only the personal list.
import { useCallback, useEffect, useReducer, useState } from 'react';
import { getLists } from './api.js';
import { openTodoStream } from './stream.js';
import { applyListMessage } from './lists.js';
import { useLatest } from './hooks.js';

export const LISTS_POLL_MS = 5000;

/** `onAdded(list)`: someone else added this user to `list` (a live insert they did not make). */
export function useLists({ onSessionLost, onAdded }) {
  const [lists, dispatch] = useReducer(applyListMessage, null);
  const [supported, setSupported] = useState(null); // null: not known yet
  const sessionLost = useLatest(onSessionLost);
  const added = useLatest(onAdded);

  useEffect(() => {
    let poller = null;
    let stopped = false;
    const poll = async () => {
      try {
        const reply = await getLists();
        if (stopped) return;
        dispatch({ type: 'snapshot', lists: reply.lists });
        setSupported(true);
      } catch (error) {
        if (stopped) return;
        if (error.status === 404) {
          // No lists API on this server: stop asking.
          setSupported(false);
          stream.close();
          clearInterval(poller);
        } else if (error.status === 401) sessionLost.current();
      }
    };
    const stream = openTodoStream({
      path: '/api/lists/',
      onMessage: (message) => {
        if (message.type === 'snapshot') setSupported(true);
        // Changes come after the snapshot only: a list inserted then that is not ours was shared with us.
        if (message.type === 'change' && message.op === 'insert' && message.list?.role !== 'owner') {
          added.current?.(message.list);
        }
        dispatch(message);
      },
      onStatus: (status) => {
        clearInterval(poller);
        poller = null;
        if (status === 'unavailable') {
          poll();
          poller = setInterval(poll, LISTS_POLL_MS);
        }
      },
      onSessionLost: () => sessionLost.current(),
    });
    return () => {
      stopped = true;
      clearInterval(poller);
      stream.close();
    };
  }, [sessionLost, added]);

  // A list this page just made or just read: shown before the stream's echo.
  const known = useCallback((list) => dispatch({ type: 'change', op: 'insert', list }), []);
  return { lists, supported, known };
}
