// One sender at a time among a user's tabs. The Web Locks API where there is
// one (the lock goes with a closed or crashed tab); elsewhere a lease in
// localStorage, renewed while held and taken over once it expires.

const LEASE_MS = 5000;

/** `(fn) => Promise`: runs fn while holding the lock `name`, across tabs. */
export function exclusive(name, { locks = globalThis.navigator?.locks, storage = globalThis.localStorage } = {}) {
  if (locks?.request) return (fn) => locks.request(name, () => fn());
  if (!storage) return (fn) => fn();
  return leaseLock(name, storage);
}

/** The fallback: whoever last wrote an unexpired lease holds it. */
export function leaseLock(name, storage, { now = () => Date.now(), sleep = (ms) => new Promise((r) => setTimeout(r, ms)),
  me = Math.random().toString(36).slice(2) } = {}) {
  const read = () => {
    try {
      return JSON.parse(storage.getItem(name) ?? 'null');
    } catch {
      return null;
    }
  };
  const write = () => storage.setItem(name, JSON.stringify({ me, until: now() + LEASE_MS }));
  return async (fn) => {
    for (;;) {
      const lease = read();
      if (!lease || lease.me === me || lease.until < now()) {
        write();
        await sleep(20); // another tab may have written in the same moment: the last write wins
        if (read()?.me === me) break;
      }
      await sleep(250);
    }
    const renew = setInterval(write, LEASE_MS / 3);
    try {
      return await fn();
    } finally {
      clearInterval(renew);
      if (read()?.me === me) storage.removeItem(name);
    }
  };
}
