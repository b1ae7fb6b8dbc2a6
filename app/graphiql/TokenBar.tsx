/** The explorer's sign-in: client credentials → token, or a pasted token; the token is kept for the tab. */
import { useEffect, useState, type FormEvent } from 'react';
import { clientCredentialsToken, savedToken, saveToken } from '../shared/session';

export function TokenBar({ onToken }: { onToken(token: string): void }) {
  const [token, setToken] = useState(savedToken);
  const [clientId, setClientId] = useState('');
  const [secret, setSecret] = useState('');
  const [error, setError] = useState('');

  useEffect(() => {
    saveToken(token);
    onToken(token);
  }, [token, onToken]);

  async function signIn(event: FormEvent) {
    event.preventDefault();
    setError('');
    try {
      setToken(await clientCredentialsToken(clientId, secret));
      setSecret('');
    } catch (err) {
      setError((err as Error).message);
    }
  }

  return (
    <form className="token-bar" onSubmit={signIn} aria-label="Sign in">
      <label>
        Client id <input value={clientId} onChange={(e) => setClientId(e.target.value)} autoComplete="username" />
      </label>
      <label>
        Secret <input type="password" value={secret} onChange={(e) => setSecret(e.target.value)} autoComplete="current-password" />
      </label>
      <button type="submit" disabled={!clientId || !secret}>
        Get token
      </button>
      <label>
        Bearer token <input value={token} onChange={(e) => setToken(e.target.value.trim())} size={28} spellCheck={false} />
      </label>
      <span role="status" className={error ? 'error' : 'status'}>
        {error || (token ? 'Requests carry this token (a headers-editor Authorization wins).' : 'Not signed in.')}
      </span>
    </form>
  );
}
