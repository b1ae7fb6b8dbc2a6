import { createSecretKey, type KeyObject, randomUUID } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { OperationOutcomeError, unauthorized } from '../fhir/outcome';
import type { Caller, TokenFamily } from './caller';
import { loadSigningKeys, type SigningKeys } from './signingKeys';

/**
 * Access tokens: HS256 JWTs shaped after RFC 9068 (JWT profile for OAuth 2.0 access tokens), one issuer,
 * audience and key per family, so a `legacy` token is refused by `fhir` endpoints and vice versa.
 * Verification is local and stateless (no database round trip per request); a revoked client's tokens
 * still verify here, and are refused by the authorisation point (access/revokedClients.ts). Lifetimes are
 * short all the same (SMART Backend Services suggests at most five minutes).
 */
export const DEFAULT_TOKEN_TTL_SECONDS = 300;
const VERIFIED_CACHE_SIZE = 10_000;

export interface TokenSubject {
  clientId: string;
  customerId: string;
  scopes: string[];
  /** What the client acts as and for (claims `org`, `team`, `practitioner`, `patient`, `btg`; see Caller). */
  organizationId?: string;
  teamId?: string;
  practitionerId?: string;
  patientId?: string;
  breakGlass?: { patientId: string; reason: string; until: number };
}

/** The access token response of RFC 6749 §5.1. */
export interface IssuedToken {
  access_token: string;
  token_type: 'Bearer';
  expires_in: number;
  scope: string;
}

export interface TokenServiceOptions {
  /** Absolute base URL of the server, without a trailing slash; issuers and audiences derive from it. */
  publicUrl: string;
  ttlSeconds?: number;
  keys: SigningKeys;
  /** Clock in milliseconds, for tests. */
  now?: () => number;
}

export interface CreateTokenServiceOptions {
  publicUrl: string;
  /** Defaults to TOKEN_TTL_SECONDS from `env`, else 300. */
  ttlSeconds?: number;
  /** Where signing keys are kept between restarts; omitted → keys for this process only. */
  dataDir?: string;
  env?: NodeJS.ProcessEnv;
}

interface AccessTokenClaims {
  sub: string;
  client_id: string;
  customer_id: string;
  scope: string;
  jti: string;
  iat: number;
  exp: number;
  org?: string;
  team?: string;
  practitioner?: string;
  patient?: string;
  btg?: { patient: string; reason: string; until: number };
}

const PATHS: Record<TokenFamily, { issuer: string; audience: string }> = {
  fhir: { issuer: '/oauth2', audience: '/fhir' },
  legacy: { issuer: '/legacy/oauth2', audience: '/legacy' },
};

export class TokenService {
  readonly ttlSeconds: number;
  private readonly publicUrl: string;
  private readonly now: () => number;
  /** jsonwebtoken turns a Buffer secret into a KeyObject on every call, which dominated a read's CPU time. */
  private readonly keys: Record<TokenFamily, KeyObject>;
  /** Verified tokens by their text, until they expire: a client reuses one token for many requests. */
  private readonly verified = new Map<string, { caller: Caller; exp: number }>();

  constructor(private readonly options: TokenServiceOptions) {
    this.keys = { fhir: createSecretKey(options.keys.fhir), legacy: createSecretKey(options.keys.legacy) };
    this.publicUrl = options.publicUrl.replace(/\/+$/, '');
    this.ttlSeconds = options.ttlSeconds ?? DEFAULT_TOKEN_TTL_SECONDS;
    if (!Number.isInteger(this.ttlSeconds) || this.ttlSeconds < 1) throw new Error('token lifetime must be a positive whole number of seconds');
    this.now = options.now ?? Date.now;
  }

  /** Loads (or creates and persists) the signing keys, then builds the service. */
  static async create(options: CreateTokenServiceOptions): Promise<TokenService> {
    const env = options.env ?? process.env;
    const keys = await loadSigningKeys({ dataDir: options.dataDir, env });
    let ttlSeconds = options.ttlSeconds;
    if (ttlSeconds === undefined && env.TOKEN_TTL_SECONDS) {
      ttlSeconds = Number(env.TOKEN_TTL_SECONDS);
      if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1) throw new Error(`TOKEN_TTL_SECONDS must be a positive integer, got '${env.TOKEN_TTL_SECONDS}'`);
    }
    return new TokenService({ publicUrl: options.publicUrl, ttlSeconds, keys });
  }

  issuer(family: TokenFamily): string {
    return this.publicUrl + PATHS[family].issuer;
  }

  audience(family: TokenFamily): string {
    return this.publicUrl + PATHS[family].audience;
  }

  /** The token endpoint of a family, e.g. for a CapabilityStatement's security extension. */
  tokenUrl(family: TokenFamily): string {
    return `${this.issuer(family)}/token`;
  }

  /** `ttlSeconds` overrides the token's life (a break-the-glass token lives for its window). */
  issue(family: TokenFamily, subject: TokenSubject, options: { ttlSeconds?: number } = {}): IssuedToken {
    const iat = Math.floor(this.now() / 1000);
    const ttl = Math.max(1, Math.floor(options.ttlSeconds ?? this.ttlSeconds));
    const claims: AccessTokenClaims = {
      sub: subject.clientId,
      client_id: subject.clientId,
      customer_id: subject.customerId,
      scope: subject.scopes.join(' '),
      jti: randomUUID(),
      iat,
      exp: iat + ttl,
      ...(subject.organizationId ? { org: subject.organizationId } : {}),
      ...(subject.teamId ? { team: subject.teamId } : {}),
      ...(subject.practitionerId ? { practitioner: subject.practitionerId } : {}),
      ...(subject.patientId ? { patient: subject.patientId } : {}),
      ...(subject.breakGlass ? { btg: { patient: subject.breakGlass.patientId, reason: subject.breakGlass.reason, until: subject.breakGlass.until } } : {}),
    };
    const accessToken = jwt.sign(claims, this.keys[family], {
      algorithm: 'HS256',
      issuer: this.issuer(family),
      audience: this.audience(family),
      header: { alg: 'HS256', typ: 'at+jwt' },
    });
    return { access_token: accessToken, token_type: 'Bearer', expires_in: ttl, scope: claims.scope };
  }

  /** The caller a token speaks for; throws a 401 OperationOutcomeError for any token this family did not issue or that has expired. */
  verify(family: TokenFamily, token: string): Caller {
    const key = `${family} ${token}`;
    const hit = this.verified.get(key);
    if (hit) {
      if (hit.exp > this.now() / 1000) return hit.caller;
      this.verified.delete(key);
    }
    const caller = this.verifyUncached(family, token);
    if (this.verified.size >= VERIFIED_CACHE_SIZE) this.verified.delete(this.verified.keys().next().value as string);
    this.verified.set(key, { caller, exp: caller.expiresAt ?? 0 });
    return caller;
  }

  private verifyUncached(family: TokenFamily, token: string): Caller {
    let payload: jwt.JwtPayload | string;
    try {
      payload = jwt.verify(token, this.keys[family], {
        algorithms: ['HS256'],
        issuer: this.issuer(family),
        audience: this.audience(family),
        clockTimestamp: Math.floor(this.now() / 1000),
      });
    } catch (err) {
      if (err instanceof jwt.TokenExpiredError) throw invalidToken('The access token has expired');
      throw invalidToken(`The access token is not valid here (${(err as Error).message})`);
    }
    if (typeof payload === 'string' || typeof payload.sub !== 'string' || typeof payload.customer_id !== 'string' || typeof payload.scope !== 'string') {
      throw invalidToken('The access token lacks its client, customer or scope');
    }
    // RFC 9068 §2.2: exp and iat are required; a token that never expires could not be revoked by waiting.
    if (typeof payload.exp !== 'number' || typeof payload.iat !== 'number') throw invalidToken('The access token lacks exp or iat (RFC 9068 requires both)');
    return {
      family,
      clientId: payload.sub,
      customerId: payload.customer_id,
      scopes: payload.scope.split(' ').filter((s) => s !== ''),
      admin: false,
      expiresAt: payload.exp,
      ...optionalClaims(payload),
    };
  }
}

/** The access-model claims a token may carry, onto the Caller (only well-formed ones: we signed them). */
function optionalClaims(payload: jwt.JwtPayload): Partial<Caller> {
  const text = (v: unknown) => (typeof v === 'string' && v !== '' ? v : undefined);
  const out: Partial<Caller> = {};
  if (text(payload.org)) out.organizationId = payload.org;
  if (text(payload.team)) out.teamId = payload.team;
  if (text(payload.practitioner)) out.practitionerId = payload.practitioner;
  if (text(payload.patient)) out.patientId = payload.patient;
  const btg = payload.btg as { patient?: unknown; reason?: unknown; until?: unknown } | undefined;
  if (btg && text(btg.patient) && typeof btg.reason === 'string' && typeof btg.until === 'number') {
    out.breakGlass = { patientId: btg.patient as string, reason: btg.reason, until: btg.until };
  }
  return out;
}

/** RFC 6750 §3: a refused bearer token says why in `WWW-Authenticate`. */
function invalidToken(description: string): OperationOutcomeError {
  const base = unauthorized(description);
  const quoted = description.replace(/["\\]/g, "'");
  return new OperationOutcomeError(base.status, base.outcome, {
    'WWW-Authenticate': `Bearer realm="tributary", error="invalid_token", error_description="${quoted}"`,
  });
}
