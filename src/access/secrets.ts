import { randomBytes, scrypt as scryptCallback, timingSafeEqual, type ScryptOptions } from 'node:crypto';

/**
 * Client secrets: generated here, shown once, stored only as a salted scrypt hash
 * (`scrypt$N$r$p$salt$hash`, salt and hash base64url). The hash is checked only at the token endpoint,
 * so its cost is paid once per token, never per FHIR request. Parameters travel with each hash, so they
 * can be raised later without invalidating existing secrets.
 */
const N = 16384;
const R = 8;
const P = 1;
const KEY_LENGTH = 32;
// Bounds on parameters read back from storage, so a corrupt row cannot make one check take minutes.
const MAX_N = 1 << 20;

function scrypt(secret: string, salt: Buffer, keyLength: number, options: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => scryptCallback(secret, salt, keyLength, options, (err, key) => (err ? reject(err) : resolve(key))));
}

/** 32 random bytes, base64url: 256 bits, safe in URLs, forms and Basic credentials without escaping. */
export function generateSecret(): string {
  return randomBytes(32).toString('base64url');
}

export async function hashSecret(secret: string): Promise<string> {
  const salt = randomBytes(16);
  const hash = await scrypt(secret, salt, KEY_LENGTH, { N, r: R, p: P, maxmem: 256 * N * R });
  return ['scrypt', N, R, P, salt.toString('base64url'), hash.toString('base64url')].join('$');
}

/** Constant-time comparison; false (never an exception) for a malformed stored hash. */
export async function verifySecret(secret: string, stored: string): Promise<boolean> {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [n, r, p] = parts.slice(1, 4).map(Number);
  if (![n, r, p].every(Number.isInteger) || n < 2 || n > MAX_N || (n & (n - 1)) !== 0 || r < 1 || r > 32 || p < 1 || p > 16) {
    return false;
  }
  const salt = Buffer.from(parts[4], 'base64url');
  const expected = Buffer.from(parts[5], 'base64url');
  if (expected.length < 16) return false;
  const actual = await scrypt(secret, salt, expected.length, { N: n, r, p, maxmem: 256 * n * r * p + 1024 * 1024 });
  return timingSafeEqual(actual, expected);
}

let dummy: Promise<string> | undefined;
/**
 * A hash no secret matches, for checking a presented secret against when the client id is unknown:
 * the answer then takes as long as for a known client, so response times do not reveal which ids exist.
 */
export function unmatchableHash(): Promise<string> {
  dummy ??= hashSecret(generateSecret());
  return dummy;
}
