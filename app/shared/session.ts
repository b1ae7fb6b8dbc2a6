/**
 * The browser's sign-in: a bearer token kept for the tab (sessionStorage, gone when the tab closes), got
 * either pasted as it is (a patient token, a token from elsewhere) or from the server's token endpoint with
 * a client's credentials (OAuth 2.0 client credentials, client_secret_post).
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
  const res = await fetch('/oauth2/token', {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', client_id: clientId, client_secret: clientSecret }).toString(),
  });
  const body = (await res.json().catch(() => ({}))) as { access_token?: string; error?: string; error_description?: string };
  if (!res.ok || !body.access_token) throw new Error(body.error_description ?? body.error ?? `The token endpoint answered ${res.status}`);
  return body.access_token;
}
