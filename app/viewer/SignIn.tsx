/** Sign in with a client's credentials (client credentials grant) or a token obtained elsewhere (a patient token). */
import { useState, type FormEvent } from 'react';
import { signInWithClient } from '../shared/session';

export function SignIn({ onToken }: { onToken(token: string): void }) {
  const [clientId, setClientId] = useState('');
  const [secret, setSecret] = useState('');
  const [pasted, setPasted] = useState('');
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);

  async function submit(event: FormEvent) {
    event.preventDefault();
    setError('');
    setBusy(true);
    try {
      onToken(await signInWithClient(clientId.trim(), secret));
    } catch (err) {
      setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  }

  return (
    <section className="card narrow" aria-labelledby="sign-in-title">
      <h2 id="sign-in-title">Sign in</h2>
      <form onSubmit={submit}>
        <label htmlFor="client-id">Client id</label>
        <input id="client-id" value={clientId} onChange={(e) => setClientId(e.target.value)} autoComplete="username" required />
        <label htmlFor="client-secret">Client secret</label>
        <input id="client-secret" type="password" value={secret} onChange={(e) => setSecret(e.target.value)} autoComplete="current-password" required />
        <button type="submit" disabled={busy}>
          Sign in
        </button>
      </form>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          if (pasted.trim()) onToken(pasted.trim());
        }}
      >
        <label htmlFor="token">Or an access token (e.g. a patient token)</label>
        <input id="token" value={pasted} onChange={(e) => setPasted(e.target.value)} spellCheck={false} />
        <button type="submit">Use token</button>
      </form>
      {error && (
        <p role="alert" className="error">
          {error}
        </p>
      )}
    </section>
  );
}
