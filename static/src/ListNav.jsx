// The user's lists as links named by their titles (live from the lists
// stream), the current one marked, and a field to make a new list.
import { useState } from 'react';
import { createList } from './api.js';
import { routeHash } from './model.js';

const newId = () => globalThis.crypto?.randomUUID?.();

export function ListNav({ lists, currentId, filter, onError, onCreated }) {
  const [title, setTitle] = useState('');
  const [busy, setBusy] = useState(false);
  // On a phone the lists fold behind one button (CSS shows it only there).
  const [open, setOpen] = useState(false);
  const currentTitle = lists?.find((l) => l.id === currentId)?.title;

  async function create(event) {
    event.preventDefault();
    const name = title.trim();
    if (!name || busy) return;
    setBusy(true);
    try {
      // A client-chosen id: a retry after a lost reply cannot make a second list.
      const list = await createList(name, { id: newId() });
      setTitle('');
      onCreated(list);
      window.location.hash = routeHash(list.id, 'all');
      setOpen(false);
    } catch (error) {
      onError(error);
    } finally {
      setBusy(false);
    }
  }

  return (
    <nav className={open ? 'lists open' : 'lists'} aria-label="Your lists">
      <button type="button" className="lists-toggle" aria-expanded={open} aria-controls="lists-body"
        onClick={() => setOpen(!open)}>
        {currentTitle ? `Lists: ${currentTitle}` : 'Lists'}
      </button>
      <div className="lists-body" id="lists-body">
      {lists === null ? (
        <p className="lists-loading" role="status">Loading lists…</p>
      ) : (
        <ul>
          {lists.map((list) => (
            <li key={list.id} data-list-id={list.id}>
              <a
                href={routeHash(list.id, filter)}
                aria-current={list.id === currentId ? 'page' : undefined}
                onClick={() => setOpen(false)}
              >
                {list.title}
              </a>
              {!list.personal && list.role !== 'owner' && (
                <span className="list-role">{list.role === 'viewer' ? 'view only' : 'shared'}</span>
              )}
            </li>
          ))}
        </ul>
      )}
      <form className="new-list" onSubmit={create}>
        <label>
          <span className="visually-hidden">New list</span>
          <input
            name="new-list"
            placeholder="New list…"
            value={title}
            onChange={(e) => setTitle(e.target.value)}
          />
        </label>
        <button type="submit" disabled={busy}>
          Create list
        </button>
      </form>
      </div>
    </nav>
  );
}
