/** Log in or create an account. Errors appear under the form, in plain words. */
import { useState, type FormEvent } from 'react';
import { logIn, loginErrorText, register, type Session } from '../session';

export function Login({ onSession, notice }: { onSession: (session: Session) => void; notice?: string }) {
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function submit(action: 'login' | 'register', event?: FormEvent) {
    event?.preventDefault();
    if (!email.includes('@')) return setError('Enter your e-mail address.');
    if (action === 'register' && password.length < 8) return setError('Choose a password of at least 8 characters.');
    setBusy(true);
    setError(null);
    try {
      onSession(action === 'login' ? await logIn(email, password) : await register(email, password));
    } catch (caught) {
      setError(loginErrorText(caught));
    } finally {
      setBusy(false);
    }
  }

  return (
    <main className="login">
      <div className="login-card">
        <h1>
          <img src="/icon-192.png" alt="" width={40} height={40} /> Shelf
        </h1>
        <p className="tagline">Your study library, the same on your laptop and your phone.</p>
        {notice && <p className="notice">{notice}</p>}
        <form onSubmit={(event) => void submit('login', event)} noValidate>
          <label htmlFor="email">Email</label>
          <input id="email" type="email" autoComplete="username" value={email} onChange={(e) => setEmail(e.target.value)} aria-describedby={error ? 'login-error' : undefined} />
          <label htmlFor="password">Password</label>
          <input id="password" type="password" autoComplete="current-password" value={password} onChange={(e) => setPassword(e.target.value)} aria-describedby={error ? 'login-error' : undefined} />
          {error && (
            <p id="login-error" className="field-error" role="alert">
              {error}
            </p>
          )}
          <div className="actions">
            <button type="submit" disabled={busy}>
              Log in
            </button>
            <button type="button" className="secondary" disabled={busy} onClick={() => void submit('register')}>
              Create account
            </button>
          </div>
        </form>
      </div>
    </main>
  );
}
