// The outbox: every write the user makes, kept (and persisted) until the server
// has answered it, sent one at a time in the order it was made. While a write
// waits here, model.js's applyPending shows it as if it were done.
//
// An op is a plain object (it goes to IndexedDB as is):
//   { seq, listKey, path, kind: 'create', todo }
//   { seq, listKey, path, kind: 'update', id, fields, base?, }   base: the todo as
//   { seq, listKey, path, kind: 'delete', id, base? }              seen when the user
//   { seq, listKey, path, kind: 'toggleAll', completed }           acted; with it the
//   { seq, listKey, path, kind: 'clearCompleted' }                 write is If-Match'ed
//
// Sending never gives up on a write the server did not answer (offline, server
// down, 502/503/504): it waits and tries again, so a write is lost only when the
// server refuses it. Replays are safe: creates carry client-chosen ids, updates
// set values rather than flip them, a delete of a todo already gone is done.

/** Failures that say nothing about the write itself: try again later. A 429
 * (the account's write budget spent for now) says when, in its Retry-After. */
export function isTransient(error) {
  return error?.status === 0 || error?.status === 408 || error?.status === 429 || error?.status === 502 ||
    error?.status === 503 || error?.status === 504;
}

export const RETRY_DELAYS_MS = Object.freeze([500, 1000, 2000, 5000, 10000]);
export const MAX_PRECONDITION_RETRIES = 3;

/**
 * A 412 on a guarded write: the todo changed since the user saw it. Decide, from
 * the todo as it is now, whether that change touched what the write guards.
 *   { retry: op }     only other fields changed: send again against the new rev
 *   { done: true }    the todo already holds what the write wanted
 *   { conflict: true} someone else changed the same field: the user must choose
 */
export function resolvePrecondition(op, current) {
  const watched = op.kind === 'delete' ? ['title'] : Object.keys(op.fields);
  const wanted = op.kind === 'delete' ? null : op.fields;
  if (wanted && watched.every((f) => current[f] === wanted[f])) return { done: true };
  const changedElsewhere = watched.some((f) => current[f] !== op.base[f]);
  if (changedElsewhere) return { conflict: true };
  return { retry: { ...op, base: pickBase(current) } };
}

/** What a guarded write remembers of the todo it was made against. */
export function pickBase(todo) {
  return { title: todo.title, completed: todo.completed, rev: todo.rev };
}

/** Storage that forgets on reload; IndexedDB (idb.js) has the same three methods. */
export function memoryStorage(initial = []) {
  const rows = new Map(initial.map((op) => [op.seq, op]));
  return {
    load: async () => [...rows.values()].sort((a, b) => a.seq - b.seq),
    put: async (op) => void rows.set(op.seq, op),
    remove: async (seq) => void rows.delete(seq),
    rows,
  };
}

/**
 * @param {object} options
 * @param {(op) => Promise<{reply?: any, retry?: object, conflict?: any, done?: boolean}>} options.send
 *        performs the write; resolves with the reply, or { retry: op } to send a
 *        replacement first (silent 412 retry), or { conflict } / { done }; rejects with an ApiError
 * @param {(op, outcome) => void} options.onSettled  outcome: { reply } | { conflict } | { error }
 * @param {() => void} options.onChange  ops or waiting changed
 * @param {() => boolean} options.isOnline
 * @param {(error) => boolean} [options.keep]  failures after which the write is kept and retried
 */
export class Outbox {
  constructor({ send, onSettled = () => {}, onChange = () => {}, storage = memoryStorage(), isOnline = () => true,
    keep = isTransient, delays = RETRY_DELAYS_MS, setTimer = (f, ms) => setTimeout(f, ms), clearTimer = (t) => clearTimeout(t) }) {
    Object.assign(this, { send, onSettled, onChange, storage, isOnline, keep, delays, setTimer, clearTimer });
    this.ops = [];
    this.waiting = false; // the head failed for want of a server; retrying
    this.sending = false;
    this.failures = 0;
    this.timer = null;
    this.closed = false;
    this.loading = false;
    this.nextSeq = 1;
  }

  /** Read what an earlier page left unsent; it goes out first, in its order. */
  async load() {
    // Nothing is sent until the older writes are known: they go first.
    this.loading = true;
    let stored = [];
    try {
      stored = await this.storage.load();
    } catch {
      // No storage (private mode, quota): this page's writes still go out.
    }
    this.loading = false;
    const known = new Set(this.ops.map((op) => op.seq));
    const older = stored.filter((op) => !known.has(op.seq));
    this.ops = [...older, ...this.ops].sort((a, b) => a.seq - b.seq);
    this.nextSeq = Math.max(this.nextSeq, ...this.ops.map((op) => op.seq + 1));
    this.onChange();
    this.kick();
    return this.ops;
  }

  enqueue(fields) {
    // Sequence numbers only need to grow within one browser; Date.now() keeps
    // them growing across reloads without reading storage first.
    const seq = Math.max(this.nextSeq, Date.now() * 1000);
    this.nextSeq = seq + 1;
    const op = { ...fields, seq };
    this.ops = [...this.ops, op];
    this.storage.put(op).catch(() => {}); // no storage (private mode): memory only
    this.onChange();
    this.kick();
    return op;
  }

  /** Send now if anything waits (coming online, the stream back, a timer). */
  kick() {
    if (this.closed || this.sending || this.loading || this.ops.length === 0) return;
    if (!this.isOnline()) return this._wait(false);
    this.clearTimer(this.timer);
    this.timer = null;
    this._drain();
  }

  close() {
    this.closed = true;
    this.clearTimer(this.timer);
  }

  async _drain() {
    this.sending = true;
    try {
      while (!this.closed && this.ops.length > 0) {
        if (!this.isOnline()) return this._wait(false);
        let op = this.ops[0];
        let outcome;
        try {
          let attempts = 0;
          for (;;) {
            const result = await this.send(op);
            if (result?.retry && attempts < MAX_PRECONDITION_RETRIES) {
              attempts += 1;
              op = result.retry;
              continue;
            }
            outcome = result?.retry ? { conflict: true } : result;
            break;
          }
        } catch (error) {
          if (this.keep(error)) return this._wait(true, error?.retryAfter);
          outcome = { error };
        }
        this.failures = 0;
        if (this.waiting) this.waiting = false;
        this._remove(this.ops[0]);
        if (outcome?.reply?.id) this._rebase(outcome.reply);
        this.onSettled(op, outcome ?? {});
        this.onChange();
      }
    } finally {
      this.sending = false;
    }
  }

  /**
   * Later guarded writes to a todo were made against what the user saw, which
   * included this write: move their base to the rev it produced, or our own
   * write would look like a change made elsewhere (a false 412 conflict).
   */
  _rebase(todo) {
    this.ops = this.ops.map((op) => {
      if (op.id !== todo.id || !op.base || !(op.base.rev < todo.rev || op.base.rev == null)) return op;
      if (op.base.title !== todo.title) return op; // it saw something else: keep the guard as it was
      const rebased = { ...op, base: pickBase(todo) };
      this.storage.put(rebased).catch(() => {});
      return rebased;
    });
  }

  _remove(op) {
    this.ops = this.ops.filter((o) => o !== op);
    this.storage.remove(op.seq).catch(() => {});
  }

  _wait(failed, retryAfter = null) {
    const changed = !this.waiting;
    this.waiting = true;
    if (failed) {
      // No sooner than the server asked (a retry before then would be refused again).
      const delay = Math.max(this.delays[Math.min(this.failures, this.delays.length - 1)], (retryAfter ?? 0) * 1000);
      this.failures += 1;
      this.clearTimer(this.timer);
      this.timer = this.setTimer(() => {
        this.timer = null;
        this.kick();
      }, delay);
    }
    if (changed) this.onChange();
  }
}
