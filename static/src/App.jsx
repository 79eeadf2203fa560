// Decides which screen to show: GET /api/session/ on load picks between the
// sign-in screen and the todo app; both hand control back through callbacks.
import { useEffect, useState } from 'react';
import { getSession } from './api.js';
import { AuthScreen } from './AuthScreen.jsx';
import { TodoApp } from './TodoApp.jsx';

const SESSION_ENDED = 'Your session has ended. Please sign in again.';

export function App() {
  // { screen: 'checking' } | { screen: 'auth', notice?, error? } | { screen: 'todos', user }
  const [view, setView] = useState({ screen: 'checking' });

  useEffect(() => {
    let cancelled = false;
    getSession().then(
      ({ user }) => !cancelled && setView({ screen: 'todos', user }),
      (error) => !cancelled && setView({ screen: 'auth', error: error.status === 401 ? null : error.message }),
    );
    return () => {
      cancelled = true;
    };
  }, []);

  if (view.screen === 'checking') return null;
  if (view.screen === 'auth') {
    return (
      <AuthScreen
        notice={view.notice}
        initialError={view.error}
        onSignedIn={(user) => setView({ screen: 'todos', user })}
      />
    );
  }
  return (
    <TodoApp
      key={view.user.id} // a different user gets a fresh stream and model
      user={view.user}
      onSignedOut={() => setView({ screen: 'auth' })}
      onSessionLost={() => setView({ screen: 'auth', notice: SESSION_ENDED })}
    />
  );
}
