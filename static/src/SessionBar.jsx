import { describeOp } from './refused.js';

// Who is signed in, the honest state of the connection (announced to screen
// readers as it changes), how many writes wait to be sent, and the way out.
export const STATUS_TEXT = {
  connecting: 'Connecting…',
  live: 'Live',
  reconnecting: 'Reconnecting…',
  offline: 'Offline: changes are kept and sent when you reconnect',
  unavailable: 'Live updates unavailable: refreshing every 5 s',
};

// `unsent` is every write not yet answered (data-unsent, for tests and styles);
// it is said aloud only while writes are held back (offline, server away), not
// for each write that is merely on its way.
// While held back, the count opens to the queue itself: what each write will do, and where.
export function SessionBar({ username, status, unsent, waiting, onSignOut, ops = [] }) {
  return (
    <header className="session-bar" data-unsent={unsent}>
      <p className="connection" role="status">
        <span className="status" data-status={status}>
          {STATUS_TEXT[status] ?? status}
        </span>
        {unsent > 0 && waiting && (
          <details className="queue">
            <summary className="unsent">
              {unsent === 1 ? '1 change not saved yet' : `${unsent} changes not saved yet`}
            </summary>
            <ul>
              {ops.map((op) => (
                <li key={op.seq}>
                  {describeOp(op).what}
                  {op.listTitle ? ` (${op.listTitle})` : ''}
                </li>
              ))}
            </ul>
          </details>
        )}
      </p>
      <span className="user">
        Signed in as <strong>{username}</strong>
      </span>
      <button type="button" className="signout" onClick={onSignOut}>
        Sign out
      </button>
    </header>
  );
}
