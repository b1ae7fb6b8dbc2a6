/**
 * The browser's sign-in: a bearer token kept for the tab (sessionStorage, gone when the tab closes), got
 * either pasted as it is (a patient token, a token from elsewhere) or from the server's token endpoint with
 * a client's credentials (OAuth 2.0 client credentials, client_secret_post).
 *
 * Renewal: client credentials have no refresh token, so a sign-in with them keeps the credentials in this
 * page's memory (never in storage: a reload asks for them again) and fetches a new token before the current
 * one expires (at 80 % of `expires_in`), or at once when the server answers 401. Listeners (the viewer's
 * state) get each new token; a subscription then reconnects with it. A pasted token cannot be renewed.
 */
const KEY = 'tributary.token';

export function savedToken(): string {
  return sessionStorage.getItem(KEY) ?? '';
}

export function saveToken(token: string): void {
  if (token) sessionStorage.setItem(KEY, token);
  else sessionStorage.removeItem(KEY);
}

/** A token for the client, or an Error whose message is the server's reason. */
export async function clientCredentialsToken(clientId: string, clientSecret: string): Promise<string> {
  return (await requestToken(clientId, clientSecret)).token;
}

async function requestToken(clientId: string, clientSecret: string): Promise<{ token: string; expiresIn?: number }> {
  const res = await fetch('/oauth2/token', {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', client_id: clientId, client_secret: clientSecret }).toString(),
  });
  const body = (await res.json().catch(() => ({}))) as { access_token?: string; expires_in?: number; error?: string; error_description?: string };
  if (!res.ok || !body.access_token) throw new Error(body.error_description ?? body.error ?? `The token endpoint answered ${res.status}`);
  return { token: body.access_token, expiresIn: body.expires_in };
}

let credentials: { clientId: string; clientSecret: string } | undefined;
let timer: ReturnType<typeof setTimeout> | undefined;
let renewing: Promise<string | undefined> | undefined;
const listeners = new Set<(token: string) => void>();

function renewBefore(expiresIn: number | undefined): void {
  clearTimeout(timer);
  if (credentials && expiresIn) timer = setTimeout(() => void renewToken(), Math.max(5, expiresIn * 0.8) * 1000);
}

/** Signs in with a client's credentials, kept in memory to renew the token; the token is saved and returned. */
export async function signInWithClient(clientId: string, clientSecret: string): Promise<string> {
  const { token, expiresIn } = await requestToken(clientId, clientSecret);
  credentials = { clientId, clientSecret };
  saveToken(token);
  renewBefore(expiresIn);
  return token;
}

/** A new token from the remembered credentials (one request however many callers ask at once); undefined: none to renew with. */
export function renewToken(): Promise<string | undefined> {
  if (!credentials) return Promise.resolve(undefined);
  const { clientId, clientSecret } = credentials;
  renewing ??= requestToken(clientId, clientSecret)
    .then(({ token, expiresIn }) => {
      saveToken(token);
      renewBefore(expiresIn);
      for (const listener of listeners) listener(token);
      return token;
    })
    .catch(() => undefined)
    .finally(() => (renewing = undefined));
  return renewing;
}

/** Calls `listener` with every renewed token; returns the function that stops it. */
export function onTokenRenewed(listener: (token: string) => void): () => void {
  listeners.add(listener);
  return () => {
    listeners.delete(listener);
  };
}

/** Forgets the credentials and stops renewing (sign-out). */
export function forgetCredentials(): void {
  credentials = undefined;
  clearTimeout(timer);
}
