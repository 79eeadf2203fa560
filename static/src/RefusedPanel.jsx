// "Not saved": every write the server refused for good, with what it carried,
// offered back (copy the text, or add it to a list the user can write to).
import { useState } from 'react';
import { canWrite } from './lists.js';
import { keepFocusFrom, neighbour } from './hooks.js';

// The entry goes with this button: focus moves to a neighbour's first button, or on (hooks.js).
const handOn = (button) => keepFocusFrom(button, neighbour(button, 'button'));

function Entry({ entry, targets, currentKey, onAdd, onDismiss }) {
  const [chosen, setTarget] = useState(currentKey);
  // The lists change under it (the one the write was for may be gone): never point at none.
  const target = targets.some((t) => t.key === chosen) ? chosen : targets[0]?.key ?? '';
  const copy = () => navigator.clipboard?.writeText(entry.text).catch(() => {});
  return (
    <li data-seq={entry.seq}>
      <p className="refused-what">{entry.what}</p>
      <p className="refused-why">
        {entry.listTitle ? `In “${entry.listTitle}”: ` : ''}
        {entry.reason}
      </p>
      {entry.text && (
        <div className="refused-actions">
          <button type="button" name="copy" onClick={copy}>Copy text</button>
          {targets.length > 0 && (
            <>
              <label>
                <span className="visually-hidden">Add to list</span>
                <select name="target" value={target} onChange={(e) => setTarget(e.target.value)}>
                  {targets.map((t) => <option key={t.key} value={t.key}>{t.title}</option>)}
                </select>
              </label>
              <button type="button" name="add-again" onClick={(e) => {
                handOn(e.currentTarget);
                onAdd(entry, targets.find((t) => t.key === target));
              }}>
                Add as a todo
              </button>
            </>
          )}
        </div>
      )}
      <button type="button" name="dismiss-refused" onClick={(e) => {
        handOn(e.currentTarget);
        onDismiss(entry);
      }}>Dismiss</button>
    </li>
  );
}

export function RefusedPanel({ entries, lists, currentKey, onAdd, onDismiss }) {
  if (entries.length === 0) return null;
  const targets = (lists ?? [{ id: null, personal: true, title: 'Todos', role: 'owner' }])
    .filter((l) => canWrite(l.role))
    .map((l) => ({ key: l.personal ? 'personal' : l.id, id: l.personal ? null : l.id, title: l.title }));
  return (
    <section className="refused" aria-labelledby="refused-heading">
      <h2 id="refused-heading">Not saved ({entries.length})</h2>
      <ul>
        {entries.map((entry) => (
          <Entry key={entry.seq} entry={entry} targets={targets} currentKey={currentKey} onAdd={onAdd} onDismiss={onDismiss} />
        ))}
      </ul>
    </section>
  );
}
