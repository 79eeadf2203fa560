// The outbox: every write the user makes, kept (and persisted) until the server
// has answered it, sent one at a time in the order it was made. While a write
// waits here, model.js's applyPending shows it as if it were done.
//
// An op is a plain object (it goes to IndexedDB as is), with its `key` (the
// Idempotency-Key) and, for the page, `label` (the todo's title) and `listTitle`:
//   { seq, listKey, path, kind: 'create', todo }
//   { seq, listKey, path, kind: 'update', id, fields, base?, }   base: the todo as
//   { seq, listKey, path, kind: 'delete', id, base? }              seen when the user
//   { seq, listKey, path, kind: 'toggleAll', completed }           acted; with it the
//   { seq, listKey, path, kind: 'clearCompleted' }                 write is If-Match'ed
//
// Sending never gives up on a write the server did not answer (offline, server
// down, 502/503/504): it waits and tries again; a write the server refuses for
// good is reported (onSettled { error }), for the page to keep and offer back.
// Replays are safe: every op carries its own Idempotency-Key (`key`), sent with
// every attempt, so a write whose answer was lost is performed once.
//
// Every tab of one user shares the stored outbox. Only the tab holding the
// `lock` sends, and it reads the stored ops before each write and removes each
// answered op from storage before the next: an op sent by one tab is never
// sent again by another, and writes go out in the order they were made,
// whichever tab made them. `onStored` tells the other tabs to re-read.

/** Failures that say nothing about the write itself: try again later (429: when the server says). */
export function isTransient(error) {
  return [0, 408, 429, 502, 503, 504].includes(error?.status);
}

export const newKey = () =>
  globalThis.crypto?.randomUUID?.() ??
  'xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx'.replace(/[xy]/g, (c) => {
    const r = (Math.random() * 16) | 0;
    return (c === 'x' ? r : (r & 0x3) | 0x8).toString(16);
  });

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

/** Storage that forgets on reload; IndexedDB (idb.js) has the same methods. */
export function memoryStorage(initial = [], withRefused = true) {
  const rows = new Map(initial.map((op) => [op.seq, op]));
  return {
    load: async () => [...rows.values()].sort((a, b) => a.seq - b.seq),
    put: async (op) => void rows.set(op.seq, op),
    remove: async (seq) => void rows.delete(seq),
    rows,
    ...(withRefused ? { refused: memoryStorage([], false) } : {}),
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
    keep = isTransient, delays = RETRY_DELAYS_MS, setTimer = (f, ms) => setTimeout(f, ms), clearTimer = (t) => clearTimeout(t),
    lock = (fn) => fn(), onStored = () => {}, makeKey = newKey }) {
    Object.assign(this, { send, onSettled, onChange, storage, isOnline, keep, delays, setTimer, clearTimer, lock,
      onStored, makeKey });
    this.unstored = new Set(); // seqs of this tab's ops not (yet) in storage: kept through a re-read
    this.ops = [];
    this.waiting = false; // the head failed for want of a server; retrying
    this.sending = false;
    this.holding = false; // inside the lock: reads and sends; others only read
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
    // Sequence numbers grow within a tab and across reloads (Date.now(), no
    // storage read first), and are the stored key shared by the user's tabs:
    // random low digits keep two tabs writing in the same millisecond from
    // taking one key (one op would overwrite the other).
    const seq = Math.max(this.nextSeq, Date.now() * 1000 + Math.floor(Math.random() * 1000));
    this.nextSeq = seq + 1;
    const op = { ...fields, seq, key: this.makeKey() };
    this.ops = [...this.ops, op];
    this.unstored.add(seq);
    // No storage (private mode): memory only, never dropped by a re-read.
    this.storage.put(op).then(() => {
      this.unstored.delete(seq);
      this.onStored();
    }, () => {});
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

  /** Another tab changed the stored outbox: show what it holds now. */
  async refresh() {
    // Also while waiting for the lock: the count follows the sender's progress.
    if (this.holding || this.loading || this.closed) return;
    await this._read();
    this.onChange();
    this.kick();
  }

  /** The stored ops, plus this tab's own ones not stored yet, in order. */
  async _read() {
    let stored;
    try {
      stored = await this.storage.load();
    } catch {
      return;
    }
    const mine = this.ops.filter((op) => this.unstored.has(op.seq));
    const seen = new Set(stored.map((op) => op.seq));
    this.ops = [...stored, ...mine.filter((op) => !seen.has(op.seq))].sort((a, b) => a.seq - b.seq);
  }

  async _drain() {
    this.sending = true;
    let after = null;
    try {
      await this.lock(async () => {
        this.holding = true;
        try {
          after = await this._drainLocked();
        } finally {
          this.holding = false;
        }
      });
    } catch {
      after = 'failed';
    } finally {
      this.sending = false;
    }
    this.onChange();
    if (after) this._wait(after === 'failed', this.retryAfter);
    else if (this.ops.length) this.kick();
  }

  // Holding the lock: no other tab sends until this returns. Returns why it
  // stopped early ('offline', 'failed'), or null when the outbox is empty.
  async _drainLocked() {
    for (;;) {
      await this._read();
      this.onChange();
      if (this.closed || this.ops.length === 0) return null;
      if (!this.isOnline()) return 'offline';
      const head = this.ops[0];
      let op = head;
      let outcome;
      try {
        let attempts = 0;
        for (;;) {
          const result = await this.send(op);
          if (result?.retry && attempts < MAX_PRECONDITION_RETRIES) {
            attempts += 1;
            // Another request (a new If-Match): another key. Stored in the
            // op's place, so that a lost answer is retried with this key.
            op = { ...result.retry, seq: head.seq, key: this.makeKey() };
            this.ops = this.ops.map((o) => (o.seq === head.seq ? op : o));
            await this.storage.put(op).catch(() => {});
            continue;
          }
          outcome = result?.retry ? { conflict: true } : result;
          break;
        }
      } catch (error) {
        if (this.keep(error)) {
          this.retryAfter = error?.retryAfter ?? null;
          return 'failed';
        }
        outcome = { error };
      }
      this.failures = 0;
      this.waiting = false;
      await this._remove(op);
      if (outcome?.reply?.id) await this._rebase(outcome.reply);
      this.onStored();
      this.onSettled(op, outcome ?? {});
    }
  }

  /**
   * Later guarded writes to a todo were made against what the user saw, which
   * included this write: move their base to the rev it produced, or our own
   * write would look like a change made elsewhere (a false 412 conflict).
   */
  async _rebase(todo) {
    const puts = [];
    this.ops = this.ops.map((op) => {
      if (op.id !== todo.id || !op.base || !(op.base.rev < todo.rev || op.base.rev == null)) return op;
      if (op.base.title !== todo.title) return op; // it saw something else: keep the guard as it was
      // A new If-Match: a new request, so a new key.
      const rebased = { ...op, base: pickBase(todo), key: this.makeKey() };
      puts.push(this.storage.put(rebased).catch(() => {}));
      return rebased;
    });
    await Promise.all(puts);
  }

  // Gone from storage before the lock is let go: no other tab can send it again.
  async _remove(op) {
    this.ops = this.ops.filter((o) => o.seq !== op.seq);
    this.unstored.delete(op.seq);
    await this.storage.remove(op.seq).catch(() => {});
  }

  _wait(failed, retryAfter = null) {
    const changed = !this.waiting;
    this.waiting = true;
    if (failed) {
      // A server that asks for a pause (429 Retry-After) gets at least that.
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
