// Who is signed in, the honest state of the connection (announced to screen
// readers as it changes), how many writes wait to be sent, and the way out.
export const STATUS_TEXT = {
  connecting: 'Connecting…',
  live: 'Live',
  reconnecting: 'Reconnecting…',
  offline: 'Offline: changes are kept and sent when you reconnect',
  unavailable: 'Live updates unavailable: refreshing every 5 s',
};

export function SessionBar({ username, status, unsent, onSignOut }) {
  return (
    <header className="session-bar">
      <p className="connection" role="status">
        <span className="status" data-status={status}>
          {STATUS_TEXT[status] ?? status}
        </span>
        {unsent > 0 && (
          <span className="unsent">
            {unsent === 1 ? '1 change not saved yet' : `${unsent} changes not saved yet`}
          </span>
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
