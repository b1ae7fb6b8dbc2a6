import { createLocalJWKSet, decodeJwt, errors, jwtVerify, type JSONWebKeySet } from 'jose';
import type { ClientRecord } from '../store/tenancyRepository';
import type { AssertionJtis } from './assertionJtis';
import { invalidClient, OAuthError } from './oauthError';

/**
 * private_key_jwt client authentication (RFC 7523 §2.2 and §3, as SMART Backend Services profiles it): the
 * client signs a short-lived JWT with a private key whose public half it registered (`jwks`), and the token
 * endpoint checks it: algorithm RS384 or ES384 only, signature by one of the registered keys, iss = sub =
 * the client id, aud = this token endpoint's URL, exp no more than five minutes ahead, and a jti never seen
 * before for this client (replays refused). Every refusal is invalid_client, saying what was wrong.
 */
export const CLIENT_ASSERTION_ALGORITHMS = ['RS384', 'ES384'] as const;
const MAX_LIFETIME_SECONDS = 300;
/** Tolerated clock difference with the client, for exp, nbf and iat. */
const CLOCK_SKEW_SECONDS = 30;
const MAX_JTI_LENGTH = 255;

export interface ClientAssertionDeps {
  /** The client of an id, with its registered keys. */
  findClient(clientId: string): Promise<ClientRecord | null>;
  jtis: AssertionJtis;
  now?: () => number;
}

export interface PresentedAssertion {
  assertion: string;
  /** `client_id` of the form, if sent: must then name the assertion's issuer. */
  clientId?: string;
  /** The URL the request was made to, the assertion's required audience. */
  tokenUrl: string;
}

export async function authenticateAssertion(deps: ClientAssertionDeps, presented: PresentedAssertion): Promise<ClientRecord> {
  let unverified: ReturnType<typeof decodeJwt>;
  try {
    unverified = decodeJwt(presented.assertion);
  } catch {
    throw refused('client_assertion is not a JWT');
  }
  const clientId = unverified.iss;
  if (typeof clientId !== 'string' || clientId === '') throw refused('client_assertion names no issuer (iss must be your client_id)');
  if (presented.clientId !== undefined && presented.clientId !== clientId) throw refused('client_id differs from the client_assertion issuer');
  const client = await deps.findClient(clientId);
  if (!client?.jwks) throw refused('Unknown client, or no public keys registered for private_key_jwt');
  if (client.revokedAt) throw refused('This client has been revoked');

  const now = deps.now?.() ?? Date.now();
  let payload: Awaited<ReturnType<typeof jwtVerify>>['payload'];
  try {
    ({ payload } = await jwtVerify(presented.assertion, createLocalJWKSet(client.jwks as JSONWebKeySet), {
      algorithms: [...CLIENT_ASSERTION_ALGORITHMS],
      issuer: clientId,
      subject: clientId,
      audience: presented.tokenUrl,
      requiredClaims: ['iss', 'sub', 'aud', 'exp', 'jti'],
      clockTolerance: CLOCK_SKEW_SECONDS,
      currentDate: new Date(now),
    }));
  } catch (err) {
    throw refused(assertionProblem(err, presented.tokenUrl));
  }
  const exp = payload.exp as number;
  if (exp > now / 1000 + MAX_LIFETIME_SECONDS + CLOCK_SKEW_SECONDS) throw refused(`client_assertion exp must be at most ${MAX_LIFETIME_SECONDS / 60} minutes ahead`);
  const jti = payload.jti;
  if (typeof jti !== 'string' || jti === '' || jti.length > MAX_JTI_LENGTH) throw refused(`client_assertion jti must be a string of 1 to ${MAX_JTI_LENGTH} characters`);
  // Kept past exp by the tolerance, so an assertion still accepted under it cannot be replayed.
  if (!(await deps.jtis.firstUse(clientId, jti, new Date((exp + CLOCK_SKEW_SECONDS) * 1000)))) {
    throw refused('client_assertion jti was used before: make a new assertion for every token request');
  }
  return client;
}

function refused(description: string): OAuthError {
  return invalidClient(description, false);
}

/** What jose found wrong, in the words of the SMART Backend Services checks. */
function assertionProblem(err: unknown, tokenUrl: string): string {
  if (err instanceof errors.JOSEAlgNotAllowed) return `client_assertion must be signed with ${CLIENT_ASSERTION_ALGORITHMS.join(' or ')}`;
  if (err instanceof errors.JWKSNoMatchingKey) return 'client_assertion is not signed by a key registered for this client';
  if (err instanceof errors.JWKSMultipleMatchingKeys) return 'client_assertion must name its key (kid): several registered keys match';
  if (err instanceof errors.JWSSignatureVerificationFailed) return 'client_assertion signature does not verify with the registered keys';
  if (err instanceof errors.JWTExpired) return 'client_assertion has expired';
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.claim === 'aud') return `client_assertion aud must be this token endpoint, ${tokenUrl}`;
    if (err.claim === 'iss' || err.claim === 'sub') return 'client_assertion iss and sub must both be your client_id';
    if (err.claim === 'nbf') return 'client_assertion is not valid yet (nbf)';
    return `client_assertion ${err.claim} is missing or invalid (${err.reason})`;
  }
  if (err instanceof errors.JOSEError) return `client_assertion is not valid (${err.message})`;
  return 'client_assertion is not valid';
}
