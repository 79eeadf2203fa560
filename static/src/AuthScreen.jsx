// Sign-in / sign-up form. Two modes, so the password field can tell password
// managers the truth: current-password to sign in, new-password to sign up.
// Validation is left to the server so its messages are the ones shown.
import { useState } from 'react';
import { useAutoFocus } from './hooks.js';
import { describeAuthError, signIn, signUp } from './api.js';

export function AuthScreen({ onSignedIn, notice = null, initialError = null }) {
  const [mode, setMode] = useState('signin'); // 'signin' | 'signup'
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState(initialError);
  const [busy, setBusy] = useState(false);
  const signingUp = mode === 'signup';
  const usernameRef = useAutoFocus();
  // Which fields the error is about, for aria-invalid: the one it names, else both.
  const names = (field) => error && (new RegExp(field, 'i').test(error) || !/username|password/i.test(error));
  const invalid = (field) => (names(field) ? { 'aria-invalid': true } : {});
  const described = (field, ...more) => [names(field) && 'auth-error', ...more].filter(Boolean).join(' ') || undefined;

  async function handleSubmit(event) {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const { user } = await (signingUp ? signUp : signIn)(username, password);
      onSignedIn(user);
    } catch (failure) {
      setError(describeAuthError(failure));
      setBusy(false);
    }
  }

  return (
    <main>
      <section className="auth">
      <h1>todos</h1>
      <form className="auth-form" onSubmit={handleSubmit} noValidate aria-labelledby="auth-heading">
        <h2 id="auth-heading">{signingUp ? 'Create an account' : 'Sign in'}</h2>
        {notice && <p className="auth-notice">{notice}</p>}
        <label>
          <span>Username</span>
          <input
            name="username"
            autoComplete="username"
            ref={usernameRef}
            {...invalid('username')}
            aria-describedby={described('username')}
            value={username}
            onChange={(e) => setUsername(e.target.value)}
          />
        </label>
        <label>
          <span>Password</span>
          <input
            name="password"
            type="password"
            autoComplete={signingUp ? 'new-password' : 'current-password'}
            {...invalid('password')}
            aria-describedby={described('password', signingUp && 'password-rule')}
            value={password}
            onChange={(e) => setPassword(e.target.value)}
          />
        </label>
        {signingUp && (
          <p id="password-rule" className="auth-hint">
            At least 8 characters.
          </p>
        )}
        {error && (
          <p className="auth-error" id="auth-error" role="alert">
            {error}
          </p>
        )}
        <div className="auth-actions">
          <button type="submit" name={signingUp ? 'signup' : 'signin'} disabled={busy}>
            {signingUp ? 'Sign up' : 'Sign in'}
          </button>
        </div>
        <p className="auth-switch">
          {signingUp ? 'Have an account? ' : 'New here? '}
          <button
            type="button"
            name={signingUp ? 'to-signin' : 'to-signup'}
            onClick={() => {
              setMode(signingUp ? 'signin' : 'signup');
              setError(null);
            }}
          >
            {signingUp ? 'Sign in instead' : 'Create an account'}
          </button>
        </p>
      </form>
      </section>
    </main>
  );
}
