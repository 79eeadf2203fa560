// Sign-in / sign-up form. One form, two submit buttons: the button pressed
// picks the endpoint, and Enter in a field signs in (the first submit button).
// Validation is left to the server so its messages are the ones shown.
import { useState } from 'react';
import { signIn, signUp } from './api.js';

export function AuthScreen({ onSignedIn, notice = null, initialError = null }) {
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState(initialError);
  const [busy, setBusy] = useState(false);

  async function handleSubmit(event) {
    event.preventDefault();
    const register = event.nativeEvent.submitter?.name === 'signup';
    setBusy(true);
    setError(null);
    try {
      const { user } = await (register ? signUp : signIn)(username, password);
      onSignedIn(user);
    } catch (failure) {
      setError(describeAuthError(failure));
      setBusy(false);
    }
  }

  return (
    <section className="auth">
      <h1>todos</h1>
      <form className="auth-form" onSubmit={handleSubmit} noValidate>
        {notice && <p className="auth-notice">{notice}</p>}
        <label>
          <span>Username</span>
          <input
            name="username"
            autoComplete="username"
            autoFocus
            value={username}
            onChange={(e) => setUsername(e.target.value)}
          />
        </label>
        <label>
          <span>Password</span>
          <input
            name="password"
            type="password"
            autoComplete="current-password"
            value={password}
            onChange={(e) => setPassword(e.target.value)}
          />
        </label>
        {error && (
          <p className="auth-error" role="alert">
            {error}
          </p>
        )}
        <div className="auth-actions">
          <button type="submit" name="signin" disabled={busy}>
            Sign in
          </button>
          <button type="submit" name="signup" disabled={busy}>
            Sign up
          </button>
        </div>
      </form>
    </section>
  );
}

/** The server's own message, plus the wait for a throttled (429) sign-in. */
export function describeAuthError(error) {
  if (error.status === 429 && error.retryAfter != null) {
    const sentence = error.message.replace(/[.!]?\s*$/, '.');
    return `${sentence} Try again in ${error.retryAfter} s.`;
  }
  return error.message;
}
