// The service worker: the app shell (the page and its hashed assets) from a
// cache, so the page opens offline and while the server is down; the outbox in
// IndexedDB and the last user (localStorage) do the rest. build.mjs prepends
// SHELL (the URLs to keep) and VERSION (changes with them). The API is never
// cached: every /api/ request goes to the network as if there were no worker.
/* global SHELL, VERSION */
const CACHE = `todopy-shell-${VERSION}`;

self.addEventListener('install', (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    caches.keys().then((keys) =>
      Promise.all(keys.filter((k) => k.startsWith('todopy-shell-') && k !== CACHE).map((k) => caches.delete(k)))),
  );
});

self.addEventListener('fetch', (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== 'GET' || url.origin !== self.location.origin) return;
  if (request.mode === 'navigate' && url.pathname === '/') {
    // The page from the network while it answers (a new build shows at once),
    // else the copy kept: unreachable, or a proxy's 5xx for a server that is down.
    event.respondWith(
      fetch(request).then(
        async (response) => {
          if (response.ok) {
            const copy = response.clone();
            event.waitUntil(caches.open(CACHE).then((cache) => cache.put('/', copy)));
            return response;
          }
          return response.status >= 500 ? (await caches.match('/')) ?? response : response;
        },
        async () => (await caches.match('/')) ?? Response.error(),
      ),
    );
  } else if (url.pathname.startsWith('/assets/')) {
    // Content-hashed: a name always means the same bytes.
    event.respondWith(caches.match(request).then((hit) => hit ?? fetch(request)));
  }
});
