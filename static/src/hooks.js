// Small React bindings: the route in the URL hash, the browser's online state,
// and a ref that always holds the latest value (for callbacks kept by
// long-lived objects such as streams).
import { useEffect, useRef, useSyncExternalStore } from 'react';
import { parseRoute } from './model.js';

function subscribeHash(onChange) {
  window.addEventListener('hashchange', onChange);
  return () => window.removeEventListener('hashchange', onChange);
}

/** { listId: string | null, filter } from `#/...` (see model.parseRoute). */
export function useRoute() {
  const hash = useSyncExternalStore(subscribeHash, () => window.location.hash);
  const route = useRef(null);
  if (!route.current || route.current.hash !== hash) route.current = { hash, ...parseRoute(hash) };
  return route.current;
}

function subscribeOnline(onChange) {
  window.addEventListener('online', onChange);
  window.addEventListener('offline', onChange);
  return () => {
    window.removeEventListener('online', onChange);
    window.removeEventListener('offline', onChange);
  };
}

/** navigator.onLine, live. */
export function useOnline() {
  return useSyncExternalStore(subscribeOnline, () => navigator.onLine !== false);
}

export function useLatest(value) {
  const ref = useRef(value);
  useEffect(() => {
    ref.current = value;
  });
  return ref;
}

/** A ref that focuses its element once, when mounted (React's autoFocus; Preact only sets the attribute). */
export function useAutoFocus() {
  const ref = useRef(null);
  useEffect(() => {
    ref.current?.focus();
  }, []);
  return ref;
}
