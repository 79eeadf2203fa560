// Who is signed in, whether the stream is live, and the way out.
export function SessionBar({ username, status, onSignOut }) {
  return (
    <div className="session-bar">
      <span className="status" data-status={status} title="Realtime connection">
        {status}
      </span>
      <span className="user">
        Signed in as <strong>{username}</strong>
      </span>
      <button type="button" className="signout" onClick={onSignOut}>
        Sign out
      </button>
    </div>
  );
}
