// Stream messages folded in once per animation frame: a toggle-all's 1,000
// changes become one state update and one render, not 1,000.

/** Calls `flush(batch)` once per animation frame with the messages pushed since. */
export function frameBatcher(flush, {
  requestFrame = globalThis.requestAnimationFrame && ((f) => globalThis.requestAnimationFrame(f)),
  fallbackMs = 100,
} = {}) {
  let queue = [];
  let frame = null;
  let timer = null;
  const run = () => {
    if (frame !== null) globalThis.cancelAnimationFrame?.(frame);
    clearTimeout(timer);
    frame = timer = null;
    const batch = queue;
    queue = [];
    if (batch.length) flush(batch);
  };
  return {
    push(message) {
      queue.push(message);
      if (frame !== null || timer !== null) return;
      if (requestFrame) frame = requestFrame(run);
      // Hidden tabs get no frames; do not let changes pile up there forever.
      timer = setTimeout(run, fallbackMs);
    },
    cancel() {
      if (frame !== null) globalThis.cancelAnimationFrame?.(frame);
      clearTimeout(timer);
      queue = [];
    },
  };
}
