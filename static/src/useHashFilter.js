// The TodoMVC route (#/, #/active, #/completed) as a filter name.
import { useSyncExternalStore } from 'react';
import { filterFromHash } from './model.js';

function subscribe(onChange) {
  window.addEventListener('hashchange', onChange);
  return () => window.removeEventListener('hashchange', onChange);
}

export function useHashFilter() {
  return useSyncExternalStore(subscribe, () => filterFromHash(window.location.hash));
}
