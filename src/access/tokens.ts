import { randomUUID, sign as signBytes, verify as verifyBytes } from 'node:crypto';
import { OperationOutcomeError, unauthorized } from '../fhir/outcome';
import type { Caller, TokenFamily } from './caller';
import { SIGNING_ALGORITHM, SigningKeyFile, type SigningKey, type SigningKeys } from './signingKeys';

/**
 * Access tokens: ES256 JWTs shaped after RFC 9068 (JWT profile for OAuth 2.0 access tokens), with one issuer,
 * audience and set of key pairs per family, so a `legacy` token is refused by `fhir` endpoints and vice versa.
 * Each family publishes its public keys as a JWKS (`jwks`); the header names the signing key (`kid`), and
 * verification looks it up in the family's own keys only. Algorithms are an allow-list of exactly ES256:
 * `none`, HS256 (an HMAC keyed with the public key: the classic confusion), RS256 and anything else are refused
 * before any key is touched.
 *
 * Signing and verification use node:crypto directly rather than jose: both stay synchronous (the doors call
 * `verify` on every request, and `issue` keeps its synchronous signature), and a verified token is cached until
 * it expires. jose checks client assertions (clientAssertion.ts) and, in the tests, reads our JWKS as any
 * resource server would. A revoked client's tokens still verify here, and are refused by the authorisation
 * point (access/revokedClients.ts). Lifetimes are short all the same (SMART Backend Services suggests at most
 * five minutes).
 */
export const DEFAULT_TOKEN_TTL_SECONDS = 300;
const VERIFIED_CACHE_SIZE = 10_000;
/** Tolerated clock difference between servers for `iat` and `nbf`; never for `exp`. */
const CLOCK_SKEW_SECONDS = 30;
/** At most one look at the key file per this many milliseconds for an unknown kid (a token signed elsewhere). */
const RELOAD_INTERVAL_MS = 1_000;
/** How often `issue` checks the key file for a rotation made by another process. */
const ISSUE_RELOAD_INTERVAL_MS = 10_000;
const BASE64URL = /^[A-Za-z0-9_-]+$/;

export interface TokenSubject {
  clientId: string;
  customerId: string;
  scopes: string[];
  /** Whom the client acts for (issue 13); each becomes a claim of the same meaning as the Caller's field. */
  organizationId?: string | null;
  teamId?: string | null;
  practitionerId?: string | null;
  patientId?: string | null;
  breakGlass?: { patientId: string; reason: string; until: number } | null;
}

/** The access token response of RFC 6749 §5.1. */
export interface IssuedToken {
  access_token: string;
  token_type: 'Bearer';
  expires_in: number;
  scope: string;
}

/** A family's public keys (RFC 7517 §5). */
export interface Jwks {
  keys: SigningKey['publicJwk'][];
}

export interface TokenServiceOptions {
  /** Absolute base URL of the server, without a trailing slash; issuers and audiences derive from it. */
  publicUrl: string;
  ttlSeconds?: number;
  /**
   * The longest life a token may be given (`issue`'s ttlSeconds, e.g. a break-the-glass window): a replaced
   * key verifies that long after a rotation. Defaults to ttlSeconds.
   */
  longestTtlSeconds?: number;
  keys: SigningKeys | SigningKeyFile;
  /** Clock in milliseconds, for tests. */
  now?: () => number;
}

export interface CreateTokenServiceOptions {
  publicUrl: string;
  /** Defaults to TOKEN_TTL_SECONDS from `env`, else 300. */
  ttlSeconds?: number;
  /** See TokenServiceOptions.longestTtlSeconds. */
  longestTtlSeconds?: number;
  /** Where signing keys are kept between restarts; omitted → keys for this process only. */
  dataDir?: string;
  env?: NodeJS.ProcessEnv;
}

interface AccessTokenClaims {
  iss: string;
  aud: string;
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
  readonly longestTtlSeconds: number;
  private readonly publicUrl: string;
  private readonly now: () => number;
  private readonly keyFile?: SigningKeyFile;
  private keys: SigningKeys;
  /** Each family's verifying keys by kid: the current key and the replaced ones still in their grace. */
  private byKid!: Record<TokenFamily, Map<string, SigningKey>>;
  private lastReload = 0;
  private lastIssueReload = 0;
  /** Verified tokens by their text, until they expire: a client reuses one token for many requests. */
  private readonly verified = new Map<string, { caller: Caller; exp: number }>();

  constructor(private readonly options: TokenServiceOptions) {
    if (options.keys instanceof SigningKeyFile) this.keyFile = options.keys;
    this.keys = options.keys instanceof SigningKeyFile ? options.keys.current : options.keys;
    this.index();
    this.publicUrl = options.publicUrl.replace(/\/+$/, '');
    this.ttlSeconds = options.ttlSeconds ?? DEFAULT_TOKEN_TTL_SECONDS;
    if (!Number.isInteger(this.ttlSeconds) || this.ttlSeconds < 1) throw new Error('token lifetime must be a positive whole number of seconds');
    this.longestTtlSeconds = Math.max(this.ttlSeconds, options.longestTtlSeconds ?? 0);
    this.now = options.now ?? Date.now;
  }

  /** Loads (or creates and persists) the signing keys, then builds the service. */
  static async create(options: CreateTokenServiceOptions): Promise<TokenService> {
    const env = options.env ?? process.env;
    const keys = await SigningKeyFile.open({ dataDir: options.dataDir, env });
    let ttlSeconds = options.ttlSeconds;
    if (ttlSeconds === undefined && env.TOKEN_TTL_SECONDS) {
      ttlSeconds = Number(env.TOKEN_TTL_SECONDS);
      if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1) throw new Error(`TOKEN_TTL_SECONDS must be a positive integer, got '${env.TOKEN_TTL_SECONDS}'`);
    }
    return new TokenService({ publicUrl: options.publicUrl, ttlSeconds, longestTtlSeconds: options.longestTtlSeconds, keys });
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

  /** The algorithms access tokens are signed with (for smart-configuration). */
  get algorithms(): string[] {
    return [SIGNING_ALGORITHM];
  }

  /** The family's public keys: the current one and those replaced whose tokens may not have expired yet. */
  jwks(family: TokenFamily): Jwks {
    this.reloadIfChanged(ISSUE_RELOAD_INTERVAL_MS, 'issue');
    const nowSeconds = this.now() / 1000;
    const { current, previous } = this.keys[family];
    return { keys: [current, ...previous.filter((k) => (k.verifyUntil as number) > nowSeconds)].map((k) => k.publicJwk) };
  }

  /**
   * Makes a new current signing key for `family` (both when omitted); the replaced key keeps verifying until
   * every token it signed has expired. Other processes on the same data folder pick the new key up.
   */
  async rotate(family?: TokenFamily): Promise<{ family: TokenFamily; kid: string; previousKid: string; previousVerifiesUntil: string }[]> {
    if (!this.keyFile) throw new Error('These signing keys were given to the server, not loaded by it: they cannot be rotated here');
    const families: TokenFamily[] = family ? [family] : ['fhir', 'legacy'];
    const rotated = [];
    const nowSeconds = Math.floor(this.now() / 1000);
    for (const f of families) {
      const previousKid = this.keys[f].current.kid;
      const grace = this.longestTtlSeconds + CLOCK_SKEW_SECONDS;
      const key = await this.keyFile.rotate(f, grace, nowSeconds);
      rotated.push({ family: f, kid: key.kid, previousKid, previousVerifiesUntil: new Date((nowSeconds + grace) * 1000).toISOString() });
    }
    this.keys = this.keyFile.current;
    this.index();
    return rotated;
  }

  /** `ttlSeconds` sets this token's life (a break-the-glass token lives for its window), at most longestTtlSeconds. */
  issue(family: TokenFamily, subject: TokenSubject, options: { ttlSeconds?: number } = {}): IssuedToken {
    this.reloadIfChanged(ISSUE_RELOAD_INTERVAL_MS, 'issue');
    const iat = Math.floor(this.now() / 1000);
    const ttl = Math.min(this.longestTtlSeconds, Math.max(1, Math.floor(options.ttlSeconds ?? this.ttlSeconds)));
    const claims: AccessTokenClaims = {
      iss: this.issuer(family),
      aud: this.audience(family),
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
    const key = this.keys[family].current;
    const header = { alg: SIGNING_ALGORITHM, typ: 'at+jwt', kid: key.kid };
    const input = `${encode(header)}.${encode(claims)}`;
    // JWS ECDSA signatures are the raw r‖s pair (RFC 7518 §3.4), not DER.
    const signature = signBytes('sha256', Buffer.from(input), { key: key.privateKey, dsaEncoding: 'ieee-p1363' });
    return { access_token: `${input}.${signature.toString('base64url')}`, token_type: 'Bearer', expires_in: ttl, scope: claims.scope };
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
    const parts = token.split('.');
    // An empty signature is let through to here so that `alg: none` is refused by name, below.
    if (parts.length !== 3 || !BASE64URL.test(parts[0]) || !BASE64URL.test(parts[1]) || !/^[A-Za-z0-9_-]*$/.test(parts[2])) {
      throw invalidToken('The access token is not a signed JWT (header.payload.signature)');
    }
    const header = decode(parts[0]);
    if (!header) throw invalidToken('The access token header is not a JSON object');
    if (header.alg !== SIGNING_ALGORITHM) throw invalidToken(`The access token must be signed with ${SIGNING_ALGORITHM}, not '${String(header.alg)}'`);
    if (header.typ !== 'at+jwt' && header.typ !== 'application/at+jwt') throw invalidToken('The access token is not typed at+jwt (RFC 9068 §2.1)');
    // RFC 7515 §4.1.11: extensions we do not understand must make the token invalid.
    if (header.crit !== undefined) throw invalidToken('The access token has critical header parameters this server does not understand');
    if (typeof header.kid !== 'string') throw invalidToken('The access token names no signing key (kid)');
    const signingKey = this.keyFor(family, header.kid);
    if (!signingKey) throw invalidToken(`The access token was signed by a key this server does not hold for ${this.issuer(family)}`);
    const signature = Buffer.from(parts[2], 'base64url');
    const valid = signature.length === 64 && verifyBytes('sha256', Buffer.from(`${parts[0]}.${parts[1]}`), { key: signingKey.publicKey, dsaEncoding: 'ieee-p1363' }, signature);
    if (!valid) throw invalidToken('The access token signature is not valid');

    const payload = decode(parts[1]);
    if (!payload) throw invalidToken('The access token claims are not a JSON object');
    const nowSeconds = this.now() / 1000;
    if (payload.iss !== this.issuer(family)) throw invalidToken(`The access token was not issued by ${this.issuer(family)}`);
    const audiences = Array.isArray(payload.aud) ? payload.aud : [payload.aud];
    if (!audiences.includes(this.audience(family))) throw invalidToken(`The access token is not meant for ${this.audience(family)}`);
    // RFC 9068 §2.2: exp and iat are required; a token that never expires could not be revoked by waiting.
    if (typeof payload.exp !== 'number' || typeof payload.iat !== 'number') throw invalidToken('The access token lacks exp or iat (RFC 9068 requires both)');
    if (payload.exp <= nowSeconds) throw invalidToken('The access token has expired');
    if (signingKey.verifyUntil !== undefined && signingKey.verifyUntil < nowSeconds) throw invalidToken('The access token was signed by a key retired since');
    if (payload.nbf !== undefined && (typeof payload.nbf !== 'number' || payload.nbf > nowSeconds + CLOCK_SKEW_SECONDS))
      throw invalidToken('The access token is not valid yet (nbf)');
    if (payload.iat > nowSeconds + CLOCK_SKEW_SECONDS) throw invalidToken('The access token was issued in the future (iat)');
    if (typeof payload.sub !== 'string' || typeof payload.customer_id !== 'string' || typeof payload.scope !== 'string') {
      throw invalidToken('The access token lacks its client, customer or scope');
    }
    const caller: Caller = {
      family,
      clientId: payload.sub,
      customerId: payload.customer_id,
      scopes: payload.scope.split(' ').filter((s) => s !== ''),
      admin: false,
      expiresAt: payload.exp,
    };
    for (const [claim, field] of [
      ['org', 'organizationId'],
      ['team', 'teamId'],
      ['practitioner', 'practitionerId'],
      ['patient', 'patientId'],
    ] as const) {
      if (payload[claim] === undefined) continue;
      if (typeof payload[claim] !== 'string' || payload[claim] === '') throw invalidToken(`The access token's '${claim}' claim must be an id`);
      caller[field] = payload[claim];
    }
    if (payload.btg !== undefined) {
      const btg = payload.btg as Record<string, unknown> | null;
      if (!btg || typeof btg.patient !== 'string' || typeof btg.reason !== 'string' || typeof btg.until !== 'number') {
        throw invalidToken("The access token claim 'btg' needs patient, reason and until");
      }
      caller.breakGlass = { patientId: btg.patient, reason: btg.reason, until: btg.until };
    }
    return caller;
  }

  /** A verifying key of the family by kid; an unknown kid may be a rotation made by another process. */
  private keyFor(family: TokenFamily, kid: string): SigningKey | undefined {
    const key = this.byKid[family].get(kid);
    if (key) return key;
    return this.reloadIfChanged(RELOAD_INTERVAL_MS, 'verify') ? this.byKid[family].get(kid) : undefined;
  }

  /** Re-reads the key file at most once per interval (per purpose); true when the keys changed. */
  private reloadIfChanged(intervalMs: number, purpose: 'issue' | 'verify'): boolean {
    if (!this.keyFile) return false;
    const now = Date.now();
    const last = purpose === 'issue' ? this.lastIssueReload : this.lastReload;
    if (now - last < intervalMs) return false;
    if (purpose === 'issue') this.lastIssueReload = now;
    else this.lastReload = now;
    if (!this.keyFile.reload()) return false;
    this.keys = this.keyFile.current;
    this.index();
    return true;
  }

  private index(): void {
    const byKid = {} as Record<TokenFamily, Map<string, SigningKey>>;
    for (const family of Object.keys(PATHS) as TokenFamily[]) {
      const { current, previous } = this.keys[family];
      byKid[family] = new Map([...previous, current].map((k) => [k.kid, k]));
    }
    this.byKid = byKid;
  }
}

function encode(value: object): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

function decode(part: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** RFC 6750 §3: a refused bearer token says why in `WWW-Authenticate`. */
function invalidToken(description: string): OperationOutcomeError {
  const base = unauthorized(description);
  const quoted = description.replace(/["\\]/g, "'");
  return new OperationOutcomeError(base.status, base.outcome, {
    'WWW-Authenticate': `Bearer realm="tributary", error="invalid_token", error_description="${quoted}"`,
  });
}
