// The WebSocket client for a list stream (`/api/todos/`, `/api/lists/<lid>/todos/`)
// and for the lists stream (`/api/lists/`). It only moves messages: parsing
// them into state is model.js's job.
//
// Lifecycle (docs/api.md, "Streams"):
//   first connect        no query       → snapshot, ready, then changes
//   after any drop       ?since=<rev>   → only the missed changes, ready, ...
// The caller's state is never cleared on a drop, so the list stays on screen
// while we reconnect; the resume brings it up to date.

import { getSession } from './api.js';

export const INITIAL_RETRY_MS = 250;
export const MAX_RETRY_MS = 5000;
// A handshake refused before `open` can be a server restart or a revoked
// session; after this many in a row, ask /api/session/ which one it is.
export const FAILED_HANDSHAKES_BEFORE_SESSION_CHECK = 2;
// ... and after this many, with the session fine, the stream counts as unavailable.
export const FAILED_HANDSHAKES_BEFORE_UNAVAILABLE = 3;

/**
 * connecting: never synced yet; live: synced and streaming; reconnecting: lost,
 * trying again with `since`; unavailable: handshakes keep failing although
 * the session is fine (a proxy that drops upgrades, say): the caller should
 * poll over REST meanwhile; we keep trying the socket.
 * @typedef {'connecting' | 'live' | 'reconnecting' | 'unavailable'} StreamStatus
 */

// Close codes that end a stream for good (docs/api.md, "Streams").
export const CLOSE_SIGNED_OUT = 1008;
export const CLOSE_NOT_MEMBER = 4403;
export const CLOSE_LIST_DELETED = 4404;

/**
 * Open the stream and keep it open until `close()`.
 *
 * @param {object} options
 * @param {(message: object) => void} options.onMessage  every parsed server message
 * @param {(status: StreamStatus) => void} [options.onStatus]
 * @param {() => void} [options.onSessionLost]  the session is gone; the stream has stopped
 * @param {(code: number) => void} [options.onGone]  the list is gone for us (4403/4404); stopped
 * @param {string} [options.path]  the stream's URL path
 * @param {() => Promise<unknown>} [options.checkSession]  rejects with `.status === 401` when signed out
 * @param {string} [options.baseUrl]  page URL the stream URL is derived from
 * @param {typeof WebSocket} [options.WebSocket]
 * @param {() => number} [options.random]  0 <= x < 1; spreads retries (jitter)
 */
export function openTodoStream({
  onMessage,
  onStatus = () => {},
  onSessionLost = () => {},
  onGone = () => {},
  path = '/api/todos/',
  checkSession = getSession,
  baseUrl = globalThis.location?.href,
  WebSocket: Socket = globalThis.WebSocket,
  random = Math.random,
}) {
  let socket = null;
  let resumeRev = null; // null until a snapshot arrives: nothing to resume yet
  let retryMs = INITIAL_RETRY_MS;
  let retryTimer = null;
  let failedHandshakes = 0;
  let stopped = false;
  let status = null;

  const setStatus = (next) => {
    if (next !== status) onStatus((status = next));
  };

  function connect() {
    retryTimer = null;
    const ws = new Socket(streamUrl(baseUrl, resumeRev, path));
    socket = ws;
    let opened = false;

    ws.onopen = () => {
      opened = true;
      failedHandshakes = 0;
    };
    ws.onmessage = (event) => {
      if (ws !== socket) return; // a late frame from a socket we gave up on
      const message = parseMessage(event.data);
      if (!message) return;
      trackResumePoint(message);
      onMessage(message);
      if (message.type === 'ready') {
        // Reset the backoff only after a full sync, so a server that accepts
        // and then drops at once is still retried ever more slowly.
        retryMs = INITIAL_RETRY_MS;
        setStatus('live');
      }
    };
    // Every failure ends in `close` (after `error`, if any), so handle it once there.
    ws.onclose = (event) => {
      if (ws !== socket || stopped) return;
      socket = null;
      const code = event?.code;
      if (code === CLOSE_NOT_MEMBER || code === CLOSE_LIST_DELETED) {
        stop();
        onGone(code);
        return;
      }
      if (code === CLOSE_SIGNED_OUT) {
        stop();
        onSessionLost();
        return;
      }
      if (status !== 'unavailable') setStatus(resumeRev === null ? 'connecting' : 'reconnecting');
      if (!opened) failedHandshakes += 1;
      if (failedHandshakes >= FAILED_HANDSHAKES_BEFORE_SESSION_CHECK) verifySessionThenRetry();
      else scheduleRetry();
    };
  }

  function trackResumePoint(message) {
    // Same rule as the model: a snapshot sets the point, changes and ready
    // only move it forward. Including the initial-sync changes means a drop in
    // the middle of a resume continues from the last change seen.
    if (typeof message.rev !== 'number') return;
    if (message.type === 'snapshot') resumeRev = message.rev;
    else if (resumeRev === null || message.rev > resumeRev) resumeRev = message.rev;
  }

  function scheduleRetry() {
    if (stopped || retryTimer !== null) return;
    // Jitter (x0.5 to x1.5): after a server restart every client retries at once;
    // random delays spread the reconnect storm instead of repeating it in step.
    retryTimer = setTimeout(connect, Math.round(retryMs * (0.5 + random())));
    retryMs = Math.min(retryMs * 2, MAX_RETRY_MS);
  }

  async function verifySessionThenRetry() {
    try {
      await checkSession();
    } catch (error) {
      if (stopped) return;
      if (error?.status === 401) {
        stop();
        onSessionLost();
        return;
      }
      // Anything else (server down, 503) is not proof the session is gone.
      setStatus(resumeRev === null ? 'connecting' : 'reconnecting');
      scheduleRetry();
      return;
    }
    // Signed in and the server answers REST, yet the socket keeps failing: the
    // stream is blocked or refused (a 404 too: the caller's poll tells).
    if (!stopped && failedHandshakes >= FAILED_HANDSHAKES_BEFORE_UNAVAILABLE) setStatus('unavailable');
    scheduleRetry();
  }

  // Coming back online: skip what is left of the backoff.
  function retryNow() {
    if (stopped || socket !== null) return;
    clearTimeout(retryTimer);
    connect();
  }

  function stop() {
    stopped = true;
    clearTimeout(retryTimer);
    retryTimer = null;
    globalThis.removeEventListener?.('online', retryNow);
    const ws = socket;
    socket = null;
    if (ws && ws.readyState <= 1) ws.close(1000, 'client closed');
  }

  globalThis.addEventListener?.('online', retryNow);
  setStatus('connecting');
  connect();

  return {
    close: stop,
    /** Send a text frame if the socket is open (the presence frame); false otherwise. */
    send(text) {
      if (socket?.readyState !== 1) return false;
      socket.send(text);
      return true;
    },
    /** The rev a reconnect would resume from (null before the first snapshot). */
    get resumeRev() {
      return resumeRev;
    },
  };
}

/** ws(s)://<host><path>[?since=N] on the page's own origin; a shared list's stream (/api/lists/<id>/todos/)
 *  also asks for its members' changes, which the share dialog follows. */
export function streamUrl(baseUrl, sinceRev = null, path = '/api/todos/') {
  const url = new URL(path, baseUrl);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  if (/^\/api\/lists\/[^/]+\/todos\/$/.test(url.pathname)) url.searchParams.set('members', 'true');
  if (sinceRev !== null) url.searchParams.set('since', String(sinceRev));
  return url.href;
}

function parseMessage(data) {
  if (typeof data !== 'string') return null;
  try {
    const message = JSON.parse(data);
    return message && typeof message === 'object' ? message : null;
  } catch {
    return null;
  }
}
