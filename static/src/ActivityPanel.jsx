// A list's activity (docs/api.md, "Activity"): who changed what, newest first,
// paged with `before`/`next`; the newest page is read again as the list changes.
import { useEffect, useRef, useState } from 'react';
import { getActivity } from './api.js';
import { addPage, describeChange, emptyActivity } from './people.js';
import { keepFocusFrom } from './hooks.js';

const when = (time) => {
  const at = new Date(time);
  return Number.isNaN(at.getTime()) ? '' : at.toLocaleString([], { dateStyle: 'short', timeStyle: 'short' });
};

export function ActivityPanel({ listId, rev }) {
  const [state, setState] = useState(emptyActivity);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const changes = useRef(null);

  async function load(before, button = null) {
    setBusy(true);
    try {
      const page = await getActivity(listId, before);
      // The last page read: "Show older" goes, so its focus moves to the changes it brought.
      if (page.next == null) keepFocusFrom(button, changes.current);
      setState((s) => addPage(s, page, before != null));
      setError(null);
    } catch (failure) {
      setError(failure.message);
    }
    setBusy(false);
  }
  useEffect(() => {
    load(null);
  }, [listId, rev]); // eslint-disable-line react-hooks/exhaustive-deps

  return (
    <section id="activity" className="activity" aria-labelledby="activity-title">
      <h3 id="activity-title">Activity</h3>
      {error && <p className="share-error" role="alert">{error}</p>}
      {state.loaded && !state.changes.length && <p>Nothing yet.</p>}
      {/* Scrolls within its own height: focusable, so keyboard users can scroll it too. */}
      <ol tabIndex={0} aria-labelledby="activity-title" ref={changes}>
        {state.changes.map((c) => (
          <li key={c.rev}>
            {describeChange(c)} <time dateTime={c.time}>{when(c.time)}</time>
          </li>
        ))}
      </ol>
      {state.next != null && (
        // aria-disabled, not disabled: a disabled button loses focus, and the keyboard user their place.
        <button type="button" name="activity-older" aria-disabled={busy}
          onClick={(e) => busy || load(state.next, e.currentTarget)}>
          Show older
        </button>
      )}
    </section>
  );
}
