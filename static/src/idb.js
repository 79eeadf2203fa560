// The outbox's storage in IndexedDB: unsent writes survive a reload, a crash or
// a closed tab, and writes the server refused stay until the user has seen
// them. One database per user, so a different account signing in on this
// browser never replays someone else's writes. Every tab of the user shares it.

const OPS = 'ops';
const REFUSED = 'refused';

function open(userId) {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(`todopy-outbox-${userId}`, 2);
    request.onupgradeneeded = () => {
      const db = request.result;
      for (const name of [OPS, REFUSED]) {
        if (!db.objectStoreNames.contains(name)) db.createObjectStore(name, { keyPath: 'seq' });
      }
    };
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

function run(dbPromise, name, mode, action) {
  return dbPromise.then(
    (db) =>
      new Promise((resolve, reject) => {
        const tx = db.transaction(name, mode);
        const request = action(tx.objectStore(name));
        tx.oncomplete = () => resolve(request?.result);
        tx.onerror = () => reject(tx.error);
        tx.onabort = () => reject(tx.error);
      }),
  );
}

function store(db, name) {
  return {
    load: () => run(db, name, 'readonly', (s) => s.getAll()).then((rows) => rows ?? []),
    put: (row) => run(db, name, 'readwrite', (s) => s.put(row)),
    remove: (seq) => run(db, name, 'readwrite', (s) => s.delete(seq)),
  };
}

/** The outbox storage interface (see outbox.js memoryStorage) over IndexedDB, plus `refused`. */
export function indexedDbStorage(userId) {
  if (!globalThis.indexedDB) return null;
  const db = open(userId);
  db.catch(() => {});
  return { ...store(db, OPS), refused: store(db, REFUSED) };
}
