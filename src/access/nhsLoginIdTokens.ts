import { readFile } from 'node:fs/promises';
import { createLocalJWKSet, createRemoteJWKSet, errors, type JSONWebKeySet, jwtVerify, type JWTVerifyGetKey } from 'jose';
import type { NhsLoginConfig } from '../config';
import { OAuthError } from './oauthError';

/**
 * Verifies NHS Login ID tokens (OpenID Connect Core §3.1.3.7) for the token exchange: signed by a key of the
 * configured issuer's JWKS with an algorithm NHS Login uses (RS512; RS256 and ES256 also accepted), `iss` the
 * configured issuer exactly, `aud` the app's client id as NHS Login knows it, `exp` and `iat` present and `exp`
 * not passed. `alg: none` and HS* (a public key used as an HMAC secret) fail the algorithm allow-list.
 * Every refusal is an OAuth `invalid_grant` naming what was wrong; the keys being unreachable is a 503.
 */
export const ID_TOKEN_ALGORITHMS = ['RS512', 'RS256', 'ES256'];
/** Clock skew tolerated between NHS Login and us. */
const CLOCK_TOLERANCE_SECONDS = 30;

/** What an ID token asserts about the person who signed in. */
export interface NhsIdentity {
  /** NHS Login's subject identifier of the person. */
  subject: string;
  nhsNumber?: string;
  /** `P0`, `P5` or `P9` (NHS Login's identity proofing levels); only P9 may read a record. */
  proofingLevel?: string;
}

export class NhsLoginIdTokens {
  private constructor(
    private readonly config: NhsLoginConfig,
    private readonly keys: JWTVerifyGetKey,
    private readonly now: () => number,
  ) {}

  /** Reads the JWKS file, or prepares to fetch (and cache) the JWKS URL on first use. */
  static async create(config: NhsLoginConfig, now: () => number = Date.now): Promise<NhsLoginIdTokens> {
    if (config.jwksFile) {
      let jwks: JSONWebKeySet;
      try {
        jwks = JSON.parse(await readFile(config.jwksFile, 'utf8')) as JSONWebKeySet;
      } catch (err) {
        throw new Error(`NHS_LOGIN_JWKS_FILE '${config.jwksFile}' is not a readable JWKS: ${(err as Error).message}`, { cause: err });
      }
      if (!jwks || !Array.isArray(jwks.keys)) throw new Error(`NHS_LOGIN_JWKS_FILE '${config.jwksFile}' has no "keys" array`);
      return new NhsLoginIdTokens(config, createLocalJWKSet(jwks), now);
    }
    if (!config.jwksUrl) throw new Error('NHS Login needs NHS_LOGIN_JWKS_URL or NHS_LOGIN_JWKS_FILE');
    return new NhsLoginIdTokens(config, createRemoteJWKSet(new URL(config.jwksUrl), { timeoutDuration: 5_000 }), now);
  }

  /** The audience an ID token must carry for the app with `clientId`. */
  audienceFor(clientId: string): string {
    return this.config.audience ?? clientId;
  }

  async verify(idToken: string, clientId: string): Promise<NhsIdentity> {
    let payload: Record<string, unknown>;
    try {
      ({ payload } = await jwtVerify(idToken, this.keys, {
        issuer: this.config.issuer,
        audience: this.audienceFor(clientId),
        algorithms: ID_TOKEN_ALGORITHMS,
        requiredClaims: ['sub', 'exp', 'iat'],
        clockTolerance: CLOCK_TOLERANCE_SECONDS,
        currentDate: new Date(this.now()),
      }));
    } catch (err) {
      throw refusal(err);
    }
    const claim = (name: string): string | undefined => {
      const value = payload[name];
      if (value === undefined) return undefined;
      if (typeof value !== 'string') throw new OAuthError('invalid_grant', `The ID token's '${name}' claim must be a string`);
      return value;
    };
    return { subject: claim('sub') as string, nhsNumber: claim('nhs_number'), proofingLevel: claim('identity_proofing_level') };
  }
}

/** The OAuth answer for a token jose refused, saying which check failed (never echoing the token). */
function refusal(err: unknown): OAuthError {
  if (err instanceof errors.JWKSTimeout || !(err instanceof errors.JOSEError) || err.code === 'ERR_JOSE_GENERIC') {
    // The issuer's keys could not be fetched: not the app's fault, and worth retrying.
    return new OAuthError('server_error', 'The NHS Login signing keys could not be fetched; try again later', 503);
  }
  if (err instanceof errors.JWTExpired) return new OAuthError('invalid_grant', 'The ID token has expired');
  if (err instanceof errors.JWTClaimValidationFailed) {
    const what: Record<string, string> = {
      iss: 'The ID token was not issued by the configured NHS Login issuer',
      aud: "The ID token was not issued for this app (its 'aud' is not the app's NHS Login client id)",
      iat: "The ID token's 'iat' is missing or in the future",
      nbf: 'The ID token is not valid yet',
    };
    return new OAuthError('invalid_grant', what[err.claim] ?? `The ID token's '${err.claim}' claim is missing or invalid`);
  }
  if (err instanceof errors.JOSEAlgNotAllowed) return new OAuthError('invalid_grant', `The ID token must be signed with one of ${ID_TOKEN_ALGORITHMS.join(', ')}`);
  if (err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWKSMultipleMatchingKeys) {
    return new OAuthError('invalid_grant', 'The ID token was not signed by a key of the NHS Login issuer');
  }
  if (err instanceof errors.JWSSignatureVerificationFailed) return new OAuthError('invalid_grant', 'The ID token signature does not verify');
  return new OAuthError('invalid_grant', 'The subject_token is not a well-formed signed ID token (JWS compact serialisation)');
}
