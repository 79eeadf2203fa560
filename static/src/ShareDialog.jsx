// The Share dialog: a modal <dialog> (focus stays inside, Escape closes, focus
// returns to the Share button) listing the members with their roles. The owner
// adds people by username with a role and removes them; a member can leave.
import { useEffect, useRef, useState } from 'react';
import { getMembers, putMember, removeMember } from './api.js';
import { canManage } from './lists.js';
import { describeChange } from './people.js';
import { keepFocusFrom, neighbour } from './hooks.js';

export function ShareDialog({ list, user, member: news, onClose, onLeft }) {
  const dialog = useRef(null);
  const [members, setMembers] = useState(null);
  const [username, setUsername] = useState('');
  const [role, setRole] = useState('editor');
  const [error, setError] = useState(null);
  const [message, setMessage] = useState('');
  const owner = canManage(list.role);

  // Unmounting closes the dialog, and the browser fires that `close` event a task
  // later, on the detached element: by then focus may have moved on (a quick Tab
  // after Escape), and onClose would pull it back. Only a close the dialog did
  // while mounted (Escape, the Close button) tells the parent.
  const unmounted = useRef(false);
  useEffect(() => {
    const element = dialog.current;
    if (element && !element.open) element.showModal?.();
    return () => {
      unmounted.current = true;
      if (element?.open) element.close();
    };
  }, []);

  async function load() {
    try {
      const reply = await getMembers(list.id);
      setMembers(reply.members);
    } catch (failure) {
      setError(failure.message);
    }
  }
  useEffect(() => {
    load();
  }, [list.id]); // eslint-disable-line react-hooks/exhaustive-deps

  // Live: another owner adds, re-roles or removes someone while this is open (the list
  // stream's `member` message): read the members again, and say what happened.
  // What this dialog did itself is said already (its own words); another tab's doing is not.
  const opened = useRef(news);
  const mine = useRef(null);
  useEffect(() => {
    if (!news || news === opened.current) return;
    load();
    if (news.by === user.username && news.member?.username === mine.current) mine.current = null;
    else setMessage(`${describeChange(news)}.`);
  }, [news]); // eslint-disable-line react-hooks/exhaustive-deps

  async function changeRole(member, next) {
    setError(null);
    try {
      mine.current = member.user.username;
      await putMember(list.id, member.user.username, next);
      setMessage(`${member.user.username} is now ${next === 'viewer' ? 'a viewer' : 'an editor'}.`);
    } catch (failure) {
      setError(failure.message);
    }
    await load();
  }

  async function add(event) {
    event.preventDefault();
    const name = username.trim();
    if (!name) return;
    setError(null);
    try {
      mine.current = name;
      const reply = await putMember(list.id, name, role);
      setUsername('');
      setMessage(`${reply.user.username} is now ${reply.role === 'viewer' ? 'a viewer' : 'an editor'}.`);
      await load();
    } catch (failure) {
      setError(failure.status === 404 ? `No user is called “${name}”.` : failure.message);
    }
  }

  async function remove(member, button) {
    setError(null);
    const leaving = member.user.id === user.id;
    try {
      mine.current = member.user.username;
      await removeMember(list.id, member.user.username);
      if (leaving) return onLeft();
      // The row goes: focus moves to a neighbour's control, else to the Username field.
      keepFocusFrom(button, neighbour(button, 'select, button') ?? dialog.current?.querySelector('input[name=share-username]'));
      setMessage(`${member.user.username} was removed.`);
      await load();
    } catch (failure) {
      setError(failure.message);
    }
  }

  return (
    <dialog ref={dialog} className="share-dialog" aria-labelledby="share-title"
      onClose={() => unmounted.current || onClose()}
      onCancel={(e) => {
        e.preventDefault();
        onClose();
      }}>
      <h2 id="share-title">{owner ? `Share “${list.title}”` : `Members of “${list.title}”`}</h2>
      {owner && (
        <form className="share-form" onSubmit={add}>
          <label>
            <span>Username</span>
            <input name="share-username" autoFocus autoComplete="off" value={username}
              onChange={(e) => setUsername(e.target.value)} />
          </label>
          <label>
            <span>Role</span>
            <select name="share-role" value={role} onChange={(e) => setRole(e.target.value)}>
              <option value="editor">Editor: can change todos</option>
              <option value="viewer">Viewer: can only look</option>
            </select>
          </label>
          <button type="submit" name="share-add">Add</button>
        </form>
      )}
      {error && <p className="share-error" role="alert">{error}</p>}
      <p className="share-message" role="status">{message}</p>
      <h3 id="members-title">Members</h3>
      {members === null ? (
        <p className="members-loading">Loading members…</p>
      ) : (
        <ul className="members" aria-labelledby="members-title">
          {members.map((member) => {
            const me = member.user.id === user.id;
            return (
              <li key={member.user.id} data-username={member.user.username}>
                <span className="member-name">{member.user.username}{me ? ' (you)' : ''}</span>
                {owner && !me && member.role !== 'owner' ? (
                  <select className="member-role" name="member-role" aria-label={`Role of ${member.user.username}`}
                    value={member.role} onChange={(e) => changeRole(member, e.target.value)}>
                    <option value="editor">editor</option>
                    <option value="viewer">viewer</option>
                  </select>
                ) : (
                  <span className="member-role">{member.role}</span>
                )}
                {owner && !me && (
                  <button type="button" className="member-remove" aria-label={`Remove ${member.user.username}`}
                    onClick={(e) => remove(member, e.currentTarget)}>
                    Remove
                  </button>
                )}
                {!owner && me && (
                  <button type="button" className="member-leave" onClick={(e) => remove(member, e.currentTarget)}>
                    Leave list
                  </button>
                )}
              </li>
            );
          })}
        </ul>
      )}
      <button type="button" name="share-close" className="share-close" onClick={onClose}>
        Close
      </button>
    </dialog>
  );
}
