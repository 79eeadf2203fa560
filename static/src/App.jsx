// Decides which screen to show: GET /api/session/ on load picks between the
// sign-in screen and the workspace. While it is asked, a loading state (never
// a blank page). When the server cannot be reached at all, the last user of
// this browser gets their workspace offline: their unsent writes are kept in
// IndexedDB and go out once the server answers.
import { useEffect, useState } from 'react';
import { getSession } from './api.js';
import { AuthScreen } from './AuthScreen.jsx';
import { Workspace } from './Workspace.jsx';

const SESSION_ENDED = 'Your session has ended. Please sign in again.';
const LAST_USER = 'todopy.lastUser';

function rememberUser(user) {
  try {
    if (user) localStorage.setItem(LAST_USER, JSON.stringify({ id: user.id, username: user.username }));
    else localStorage.removeItem(LAST_USER);
  } catch {
    // storage disabled: no offline start, nothing else lost
  }
}

function lastUser() {
  try {
    return JSON.parse(localStorage.getItem(LAST_USER) ?? 'null');
  } catch {
    return null;
  }
}

export function App() {
  // { screen: 'checking' } | { screen: 'auth', notice?, error? } | { screen: 'todos', user, unconfirmed? }
  const [view, setView] = useState({ screen: 'checking' });

  useEffect(() => {
    let cancelled = false;
    getSession().then(
      ({ user }) => {
        if (cancelled) return;
        rememberUser(user);
        setView({ screen: 'todos', user });
      },
      (error) => {
        if (cancelled) return;
        const known = lastUser();
        if (error.status === 0 && known) setView({ screen: 'todos', user: known, unconfirmed: true });
        else setView({ screen: 'auth', error: error.status === 401 ? null : error.message });
      },
    );
    return () => {
      cancelled = true;
    };
  }, []);

  // Started offline as the last user: their writes wait until the server says
  // who this browser's session belongs to now (it may have changed meanwhile).
  useEffect(() => {
    if (!view.unconfirmed) return undefined;
    let cancelled = false;
    let timer = null;
    const check = () =>
      getSession().then(
        ({ user }) => {
          if (cancelled) return;
          rememberUser(user);
          setView({ screen: 'todos', user }); // same id: same Workspace, now confirmed
        },
        (error) => {
          if (cancelled) return;
          if (error.status === 401) setView({ screen: 'auth', notice: SESSION_ENDED });
          else timer = setTimeout(check, 2000);
        },
      );
    timer = setTimeout(check, 2000);
    return () => {
      cancelled = true;
      clearTimeout(timer);
    };
  }, [view]);

  if (view.screen === 'checking') {
    return (
      <main className="app-loading" role="status">
        <h1>todos</h1>
        <p>Loading…</p>
      </main>
    );
  }
  if (view.screen === 'auth') {
    return (
      <AuthScreen
        notice={view.notice}
        initialError={view.error}
        onSignedIn={(user) => {
          rememberUser(user);
          setView({ screen: 'todos', user });
        }}
      />
    );
  }
  return (
    <Workspace
      key={view.user.id} // a different user gets fresh streams, model and outbox
      user={view.user}
      confirmed={!view.unconfirmed}
      onSignedOut={() => {
        rememberUser(null);
        setView({ screen: 'auth' });
      }}
      onSessionLost={() => {
        rememberUser(null);
        setView({ screen: 'auth', notice: SESSION_ENDED });
      }}
    />
  );
}
