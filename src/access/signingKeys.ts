import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type JsonWebKey, type KeyObject } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { TOKEN_FAMILIES, type TokenFamily } from './caller';
import { readOrCreateOwnerOnlyJson, writeOwnerOnlyJson } from './ownerOnlyFile';

/**
 * The ES256 key pairs access tokens are signed with, one set per token family, so a token of one family can
 * never verify in the other (its `kid` is simply not in the other family's set). Each set has one current key,
 * which signs, and the keys it replaced, which only verify until the tokens they signed have expired
 * (`verifyUntil`), so a rotation never refuses a token that was valid when it happened.
 *
 * Kept as private JWKs in `<dataDir>/signing-keys.json` (owner-only), created at first start, so tokens survive
 * a restart and every process on the data folder signs with the same keys; a rotation rewrites the file and the
 * other processes pick it up (`SigningKeyFile.reload`). `TOKEN_SIGNING_KEYS_FHIR` / `TOKEN_SIGNING_KEYS_LEGACY`
 * (a private EC P-256 JWK, or a JWK set whose first key signs) replace the file for that family, for servers
 * without a shared data folder; such keys are rotated by changing the environment, not by `keys rotate`.
 */
export const SIGNING_KEYS_FILE = 'signing-keys.json';
export const SIGNING_ALGORITHM = 'ES256';
const ENV: Record<TokenFamily, string> = { fhir: 'TOKEN_SIGNING_KEYS_FHIR', legacy: 'TOKEN_SIGNING_KEYS_LEGACY' };
const RETIRED_ENV: Record<TokenFamily, string> = { fhir: 'TOKEN_SECRET_FHIR', legacy: 'TOKEN_SECRET_LEGACY' };

export interface SigningKey {
  kid: string;
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** The public half as published in the family's JWKS. */
  publicJwk: JsonWebKey & { kid: string; use: 'sig'; alg: 'ES256' };
  /** Seconds since the epoch after which a replaced key verifies nothing; absent for the current key. */
  verifyUntil?: number;
}

export interface FamilyKeys {
  current: SigningKey;
  /** Replaced keys still verifying the tokens they signed. */
  previous: SigningKey[];
}

export type SigningKeys = Record<TokenFamily, FamilyKeys>;

/** One stored key: the private JWK (with its kid) and, once replaced, until when it verifies. */
interface StoredKey {
  jwk: JsonWebKey & { kid: string };
  createdAt: string;
  verifyUntil?: number;
}
type StoredKeys = Partial<Record<TokenFamily, StoredKey[] | string>>;

export interface SigningKeyOptions {
  dataDir?: string;
  env?: NodeJS.ProcessEnv;
}

/** RFC 7638 thumbprint of an EC public key: a kid that names the key itself, equal wherever it is computed. */
function thumbprint(jwk: JsonWebKey): string {
  const canonical = JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y });
  return createHash('sha256').update(canonical).digest('base64url');
}

function newStoredKey(): StoredKey {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = privateKey.export({ format: 'jwk' });
  return { jwk: { ...jwk, kid: thumbprint(jwk) }, createdAt: new Date().toISOString() };
}

function toSigningKey(jwk: JsonWebKey & { kid?: string }, where: string, verifyUntil?: number): SigningKey {
  if (jwk.kty !== 'EC' || jwk.crv !== 'P-256' || typeof jwk.d !== 'string') throw new Error(`${where}: expected a private EC P-256 JWK (ES256)`);
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey({ key: jwk, format: 'jwk' });
  } catch (err) {
    throw new Error(`${where}: not a usable private key (${(err as Error).message})`, { cause: err });
  }
  const publicKey = createPublicKey(privateKey);
  const pub = publicKey.export({ format: 'jwk' });
  const kid = typeof jwk.kid === 'string' && jwk.kid !== '' ? jwk.kid : thumbprint(pub);
  return { kid, privateKey, publicKey, publicJwk: { kty: pub.kty, crv: pub.crv, x: pub.x, y: pub.y, kid, use: 'sig', alg: 'ES256' }, verifyUntil };
}

function familyKeys(stored: StoredKey[], where: string): FamilyKeys {
  const current = stored.filter((k) => k.verifyUntil === undefined);
  if (current.length !== 1) throw new Error(`${where}: expected exactly one current key (without verifyUntil), found ${current.length}`);
  return {
    current: toSigningKey(current[0].jwk, where),
    previous: stored.filter((k) => k.verifyUntil !== undefined).map((k) => toSigningKey(k.jwk, where, k.verifyUntil)),
  };
}

function fromEnv(value: string, name: string): FamilyKeys {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    throw new Error(`${name} must be a private EC P-256 JWK or a JWK set, as JSON`);
  }
  const keys = Array.isArray((parsed as { keys?: unknown }).keys) ? (parsed as { keys: JsonWebKey[] }).keys : [parsed as JsonWebKey];
  if (keys.length === 0) throw new Error(`${name} holds no key`);
  const [current, ...previous] = keys.map((k, i) => toSigningKey(k, `${name} key ${i + 1}`));
  // Keys from the environment verify for as long as they are configured.
  return { current, previous: previous.map((k) => ({ ...k, verifyUntil: Number.MAX_SAFE_INTEGER })) };
}

/** The stored keys of every family, an older file's HS256 secrets (plain strings) replaced by key pairs. */
function completed(value: StoredKeys): { keys: Record<TokenFamily, StoredKey[]>; changed: boolean } {
  let changed = false;
  const keys = {} as Record<TokenFamily, StoredKey[]>;
  for (const family of TOKEN_FAMILIES) {
    const stored = value[family];
    if (Array.isArray(stored) && stored.length > 0) keys[family] = stored;
    else {
      keys[family] = [newStoredKey()];
      changed = true;
    }
  }
  return { keys, changed };
}

function refuseRetiredEnv(env: NodeJS.ProcessEnv): void {
  for (const family of TOKEN_FAMILIES) {
    if (env[RETIRED_ENV[family]]) {
      throw new Error(
        `${RETIRED_ENV[family]} is no longer used: tokens are signed with ES256 key pairs; remove it, and set ${ENV[family]} (a private EC P-256 JWK) or share DATA_DIR instead`,
      );
    }
  }
}

/**
 * The signing keys of a data folder (or of the environment), created on first use; `reload` re-reads the
 * file, which a rotation in another process has changed.
 */
export class SigningKeyFile {
  private constructor(
    readonly file: string | undefined,
    private readonly envKeys: Partial<Record<TokenFamily, FamilyKeys>>,
    private keys: SigningKeys,
    private stamp: string,
  ) {}

  static async open(options: SigningKeyOptions = {}): Promise<SigningKeyFile> {
    const env = options.env ?? {};
    refuseRetiredEnv(env);
    const envKeys: Partial<Record<TokenFamily, FamilyKeys>> = {};
    for (const family of TOKEN_FAMILIES) {
      const value = env[ENV[family]];
      if (value) envKeys[family] = fromEnv(value, ENV[family]);
    }
    const fromFile = TOKEN_FAMILIES.some((f) => !envKeys[f]);
    let stored: Record<TokenFamily, StoredKey[]> = completed({}).keys;
    let file: string | undefined;
    if (fromFile && options.dataDir) {
      file = path.join(options.dataDir, SIGNING_KEYS_FILE);
      const { value } = await readOrCreateOwnerOnlyJson<StoredKeys>(file, () => completed({}).keys);
      const { keys, changed } = completed(value);
      if (changed) await writeOwnerOnlyJson(file, keys);
      stored = keys;
    }
    const keys = {} as SigningKeys;
    for (const family of TOKEN_FAMILIES) keys[family] = envKeys[family] ?? familyKeys(stored[family], file ?? 'generated keys');
    if (keys.fhir.current.kid === keys.legacy.current.kid) throw new Error(`${ENV.fhir} and ${ENV.legacy} must differ: each token family needs its own key`);
    return new SigningKeyFile(file, envKeys, keys, file ? fileStamp(file) : '');
  }

  get current(): SigningKeys {
    return this.keys;
  }

  /** Re-reads the file if it changed since last read (a rotation elsewhere); true when the keys changed. */
  reload(): boolean {
    if (!this.file) return false;
    let stamp: string;
    let value: StoredKeys;
    try {
      stamp = fileStamp(this.file);
      if (stamp === this.stamp) return false;
      value = JSON.parse(readFileSync(this.file, 'utf8')) as StoredKeys;
    } catch {
      return false; // A file mid-replacement or removed: keep the keys we have.
    }
    const next = {} as SigningKeys;
    try {
      for (const family of TOKEN_FAMILIES) {
        const stored = value[family];
        next[family] = this.envKeys[family] ?? (Array.isArray(stored) && stored.length ? familyKeys(stored, this.file) : this.keys[family]);
      }
    } catch {
      return false; // A damaged file must not take the running server's keys with it; the next start says what is wrong.
    }
    this.keys = next;
    this.stamp = stamp;
    return true;
  }

  /**
   * Makes a new current key for `family`; the one it replaces verifies for `graceSeconds` more (the token
   * lifetime), and keys whose grace has passed are dropped. Refused for keys that come from the environment.
   */
  async rotate(family: TokenFamily, graceSeconds: number, nowSeconds: number): Promise<SigningKey> {
    if (this.envKeys[family]) throw new Error(`The ${family} signing keys come from ${ENV[family]}: rotate them by changing it`);
    const fresh = newStoredKey();
    if (this.file) {
      let value: StoredKeys;
      try {
        value = JSON.parse(readFileSync(this.file, 'utf8')) as StoredKeys;
      } catch (err) {
        throw new Error(`${this.file} cannot be read; keys not rotated`, { cause: err });
      }
      const { keys } = completed(value);
      keys[family] = [
        ...keys[family].map((k) => (k.verifyUntil === undefined ? { ...k, verifyUntil: nowSeconds + graceSeconds } : k)).filter((k) => (k.verifyUntil as number) > nowSeconds),
        fresh,
      ];
      await writeOwnerOnlyJson(this.file, keys);
      this.reload();
    } else {
      const old = this.keys[family];
      this.keys = {
        ...this.keys,
        [family]: {
          current: toSigningKey(fresh.jwk, 'generated key'),
          previous: [...old.previous.filter((k) => (k.verifyUntil as number) > nowSeconds), { ...old.current, verifyUntil: nowSeconds + graceSeconds }],
        },
      };
    }
    return this.keys[family].current;
  }
}

/** A rewrite replaces the file (a new inode), so inode and mtime together tell a changed file. */
function fileStamp(file: string): string {
  const { ino, mtimeMs, size } = statSync(file);
  return `${ino}:${mtimeMs}:${size}`;
}

/** The keys of a data folder or the environment (see SigningKeyFile). */
export async function loadSigningKeys(options: SigningKeyOptions = {}): Promise<SigningKeys> {
  return (await SigningKeyFile.open(options)).current;
}
