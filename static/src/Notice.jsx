// A message at the top of the app card: a lost-update conflict (.conflict),
// a failed request (.app-error) or news about a list (.info), optionally with
// actions (e.g. "Use my title"). It stays until dismissed or the next action.
import { keepFocusFrom } from './hooks.js';

export function Notice({ kind, text, actions = [], onDismiss }) {
  const className = kind === 'conflict' ? 'conflict' : kind === 'info' ? 'info' : 'app-error';
  return (
    <div className={`notice ${className}`} role="alert">
      <span className="notice-text">{text}</span>
      {actions.map((action) => (
        <button
          key={action.label}
          type="button"
          className="notice-action"
          onClick={(e) => {
            keepFocusFrom(e.currentTarget);
            onDismiss();
            action.run();
          }}
        >
          {action.label}
        </button>
      ))}
      <button type="button" className="notice-dismiss" aria-label="Dismiss" onClick={(e) => {
        keepFocusFrom(e.currentTarget);
        onDismiss();
      }}>
        ×
      </button>
    </div>
  );
}

/**
 * The notice for a failed request. One that failed for want of a network is
 * marked so, and goes by itself once the connection is back (Workspace).
 */
export function errorNotice(error) {
  return { kind: 'error', text: error.message, cause: error.status === 0 ? 'network' : undefined };
}
