// Small React bindings: the route in the URL hash, the browser's online state,
// a ref that always holds the latest value (for callbacks kept by long-lived
// objects such as streams), and focus for keyboard users.
import { useEffect, useLayoutEffect, useRef, useSyncExternalStore } from 'react';
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

/**
 * [ref, returnFocus]: after `returnFocus()`, the next render focuses ref's element.
 * For a control hidden while something replaces it (a form, a confirmation): it
 * exists again only once that has gone, so focusing it from the handler that
 * closes the form would miss, and the keyboard user would land on the page's body.
 */
export function useReturnFocus() {
  const ref = useRef(null);
  const pending = useRef(false);
  useLayoutEffect(() => {
    if (!pending.current) return;
    pending.current = false; // one try: if the control is gone for good (access lost), let it be
    ref.current?.focus();
  });
  return [ref, () => { pending.current = true; }];
}

/**
 * For what is about to go (a todo's row, Clear completed, a notice's buttons, a
 * "Not saved" entry's, the activity's "Show older"): when focus is in it, hand it
 * to `next` if given, else to the new-todo input, the page's main control. Call
 * before the state change that removes it.
 */
export function keepFocusFrom(gone, next = null) {
  if (gone?.contains(document.activeElement)) (next ?? document.querySelector('.new-todo'))?.focus();
}

/** The first `selector` in the row (li) after `control`'s, else in the one before: where focus goes when that row does. */
export function neighbour(control, selector) {
  const row = control.closest('li');
  const find = (li) => li?.querySelector(selector);
  return find(row?.nextElementSibling) ?? find(row?.previousElementSibling) ?? null;
}
