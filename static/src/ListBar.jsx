// The current list's title and what the user may do with it: rename (owner,
// editor), share (everyone sees the members; the owner manages them), delete
// (owner; not the personal list), and the user's role when it is not owner.
import { useRef, useState } from 'react';
import { useAutoFocus, useReturnFocus } from './hooks.js';
import { deleteList, renameList } from './api.js';
import { canManage, canWrite } from './lists.js';
import { ShareDialog } from './ShareDialog.jsx';
import { ActivityPanel } from './ActivityPanel.jsx';
import { initials } from './people.js';
import { errorNotice } from './Notice.jsx';

export function ListBar({ list, user, setNotice, people = [], member, rev }) {
  if (!list?.id) {
    return (
      <div className="list-bar">
        <h2 className="list-title">{list?.title ?? ''}</h2>
      </div>
    );
  }
  return <ListActions list={list} user={user} setNotice={setNotice} people={people} member={member} rev={rev} />;
}

function ListActions({ list, user, setNotice, people, member, rev }) {
  const [renaming, setRenaming] = useState(null); // null | draft title
  const [activity, setActivity] = useState(false);
  const [confirmDelete, setConfirmDelete] = useState(false);
  const [sharing, setSharing] = useState(false);
  const shareButton = useRef(null);
  const [renameButton, returnToRename] = useReturnFocus();
  const deleteButton = useRef(null);   // shown beside its confirmation, so focusable at once

  function stopRenaming() {
    returnToRename();
    setRenaming(null);
  }

  function cancelDelete() {
    deleteButton.current?.focus();
    setConfirmDelete(false);
  }

  async function saveRename(event) {
    event.preventDefault();
    const title = renaming.trim();
    stopRenaming();
    if (!title || title === list.title) return;
    try {
      await renameList(list.id, title); // the lists stream brings the new title
    } catch (error) {
      setNotice(errorNotice(error));
    }
  }

  async function remove() {
    setConfirmDelete(false);
    try {
      await deleteList(list.id);
      window.location.hash = '#/';
    } catch (error) {
      setNotice(errorNotice(error));
    }
  }

  return (
    <div className="list-bar">
      {renaming !== null ? (
        <form className="rename-list" onSubmit={saveRename}>
          <label>
            <span className="visually-hidden">List title</span>
            <AutoFocusInput
              name="list-title"
              value={renaming}
              onChange={(e) => setRenaming(e.target.value)}
              onKeyDown={(e) => {
                if (e.key === 'Escape') stopRenaming();
              }}
            />
          </label>
          <button type="submit">Save</button>
        </form>
      ) : (
        <h2 className="list-title">{list.title}</h2>
      )}
      {list.role !== 'owner' && <span className="list-role">{list.role === 'viewer' ? 'Viewer' : 'Editor'}</span>}
      {people.length > 0 && (
        <ul className="people" aria-label="Also here">
          {people.map((p) => (
            <li key={p.username} title={p.editing ? `${p.username} (editing)` : p.username}
              className={p.editing ? 'is-editing' : undefined}>
              <span aria-hidden="true">{initials(p.username)}</span>
              <span className="visually-hidden">{p.username}{p.editing ? ', editing' : ''}</span>
            </li>
          ))}
        </ul>
      )}
      <div className="list-actions">
        {canWrite(list.role) && renaming === null && (
          <button type="button" name="rename-list" ref={renameButton} onClick={() => setRenaming(list.title)}>
            Rename
          </button>
        )}
        <button type="button" name="activity" aria-expanded={activity} aria-controls="activity"
          onClick={() => setActivity(!activity)}>
          Activity
        </button>
        <button type="button" name="share" ref={shareButton} onClick={() => setSharing(true)}>
          {canManage(list.role) ? 'Share' : 'Members'}
        </button>
        {canManage(list.role) && !list.personal && (
          <button type="button" name="delete-list" ref={deleteButton} onClick={() => setConfirmDelete(true)}>
            Delete list
          </button>
        )}
      </div>
      {confirmDelete && (
        <div className="confirm-delete" role="alertdialog" aria-labelledby="confirm-delete-text"
          onKeyDown={(e) => e.key === 'Escape' && cancelDelete()}>
          <p id="confirm-delete-text">Delete “{list.title}” and all its todos for everyone?</p>
          <button type="button" name="confirm-delete" onClick={remove}>
            Delete
          </button>
          <AutoFocusButton type="button" name="cancel-delete" onClick={cancelDelete}>
            Cancel
          </AutoFocusButton>
        </div>
      )}
      {activity && <ActivityPanel listId={list.id} rev={rev} />}
      {sharing && (
        <ShareDialog
          list={list}
          user={user}
          member={member}
          onClose={() => {
            setSharing(false);
            shareButton.current?.focus();
          }}
          onLeft={() => {
            setSharing(false);
            window.location.hash = '#/';
          }}
        />
      )}
    </div>
  );
}

function AutoFocusInput(props) {
  return <input ref={useAutoFocus()} {...props} />;
}

function AutoFocusButton(props) {
  return <button ref={useAutoFocus()} {...props} />;
}
