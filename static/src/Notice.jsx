// A one-line message at the top of the app card: a lost-update conflict
// (.conflict) or a failed request (.app-error). It stays until dismissed or
// until the next action.
export function Notice({ kind, text, onDismiss }) {
  return (
    <div className={`notice ${kind === 'conflict' ? 'conflict' : 'app-error'}`} role="alert">
      <span className="notice-text">{text}</span>
      <button type="button" className="notice-dismiss" aria-label="Dismiss" onClick={onDismiss}>
        ×
      </button>
    </div>
  );
}
