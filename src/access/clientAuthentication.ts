import { invalidClient, OAuthError } from './oauthError';

/**
 * How a client proves who it is at the token endpoint. Client secrets may come in HTTP Basic
 * (client_secret_basic, RFC 6749 §2.3.1) or in the form (client_secret_post); exactly one method per request
 * (RFC 6749 §2.3). `private_key_jwt` (RFC 7523 §2.2, as SMART Backend Services uses it) is recognised here
 * and its assertion verified in clientAssertion.ts.
 */
export type ClientAuthMethod = 'client_secret_basic' | 'client_secret_post' | 'private_key_jwt';

export type PresentedClient =
  { method: 'client_secret_basic' | 'client_secret_post'; clientId: string; secret: string } | { method: 'private_key_jwt'; clientId?: string; assertion: string };

const JWT_BEARER_ASSERTION = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

/** RFC 6749 §2.3.1: the id and secret are form-urlencoded before they are joined and base64-encoded. */
function formDecode(value: string): string {
  return decodeURIComponent(value.replace(/\+/g, ' '));
}

function basicCredentials(authorization: string): { clientId: string; secret: string } {
  const match = /^Basic[ ]+([A-Za-z0-9+/]+=*)\s*$/i.exec(authorization);
  const decoded = match ? Buffer.from(match[1], 'base64').toString('utf8') : '';
  const colon = decoded.indexOf(':');
  if (colon <= 0) throw invalidClient('The Basic credentials are malformed: expected base64(client_id:client_secret)', true);
  try {
    return { clientId: formDecode(decoded.slice(0, colon)), secret: formDecode(decoded.slice(colon + 1)) };
  } catch {
    throw invalidClient('The Basic credentials are not correctly form-urlencoded (RFC 6749 §2.3.1)', true);
  }
}

export function presentedClient(authorization: string | undefined, form: Record<string, string>): PresentedClient {
  const usesBasic = authorization !== undefined && /^Basic\b/i.test(authorization);
  if (authorization !== undefined && !usesBasic) {
    throw invalidClient('Only Basic authentication is accepted in the Authorization header of a token request', true);
  }
  const usesPost = form.client_secret !== undefined;
  const usesAssertion = form.client_assertion !== undefined || form.client_assertion_type !== undefined;
  if ([usesBasic, usesPost, usesAssertion].filter(Boolean).length > 1) {
    throw new OAuthError('invalid_request', 'Use exactly one client authentication method (RFC 6749 §2.3)');
  }
  if (usesBasic) {
    const basic = basicCredentials(authorization);
    if (form.client_id !== undefined && form.client_id !== basic.clientId) {
      throw new OAuthError('invalid_request', 'client_id in the body differs from the one in the Authorization header');
    }
    return { method: 'client_secret_basic', ...basic };
  }
  if (usesPost) {
    if (!form.client_id) throw new OAuthError('invalid_request', 'client_secret was sent without client_id');
    return { method: 'client_secret_post', clientId: form.client_id, secret: form.client_secret };
  }
  if (usesAssertion) {
    if (form.client_assertion_type !== JWT_BEARER_ASSERTION || !form.client_assertion) {
      throw new OAuthError('invalid_request', `client_assertion_type must be ${JWT_BEARER_ASSERTION}, with a client_assertion`);
    }
    return { method: 'private_key_jwt', clientId: form.client_id, assertion: form.client_assertion };
  }
  throw invalidClient(
    'Client authentication is required: HTTP Basic (client_secret_basic), client_id and client_secret in the body, or a client_assertion (private_key_jwt)',
    true,
  );
}
