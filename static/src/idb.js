// The outbox's storage in IndexedDB: unsent writes survive a reload, a crash or
// a closed tab. One database per user, so a different account signing in on
// this browser never replays someone else's writes.

const STORE = 'ops';

function open(userId) {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(`todopy-outbox-${userId}`, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(STORE, { keyPath: 'seq' });
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

function run(dbPromise, mode, action) {
  return dbPromise.then(
    (db) =>
      new Promise((resolve, reject) => {
        const tx = db.transaction(STORE, mode);
        const request = action(tx.objectStore(STORE));
        tx.oncomplete = () => resolve(request?.result);
        tx.onerror = () => reject(tx.error);
        tx.onabort = () => reject(tx.error);
      }),
  );
}

/** The outbox storage interface (see outbox.js memoryStorage) over IndexedDB. */
export function indexedDbStorage(userId) {
  if (!globalThis.indexedDB) return null;
  const db = open(userId);
  db.catch(() => {});
  return {
    load: () => run(db, 'readonly', (store) => store.getAll()).then((ops) => ops ?? []),
    put: (op) => run(db, 'readwrite', (store) => store.put(op)),
    remove: (seq) => run(db, 'readwrite', (store) => store.delete(seq)),
  };
}
