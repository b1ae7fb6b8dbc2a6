import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { TOKEN_FAMILIES, type TokenFamily } from './caller';
import { readOrCreateOwnerOnlyJson, writeOwnerOnlyJson } from './ownerOnlyFile';

/**
 * One HMAC key per token family, so a token of one family can never verify in the other.
 * Taken from `TOKEN_SECRET_FHIR` / `TOKEN_SECRET_LEGACY` when set (needed when several servers share the
 * load: they must all sign with the same keys); otherwise generated at first start and kept in
 * `<dataDir>/signing-keys.json` (owner-only), so tokens survive a restart. Without a data folder the keys
 * live only as long as the process (tests).
 */
export type SigningKeys = Record<TokenFamily, Buffer>;

export const SIGNING_KEYS_FILE = 'signing-keys.json';
const ENV: Record<TokenFamily, string> = { fhir: 'TOKEN_SECRET_FHIR', legacy: 'TOKEN_SECRET_LEGACY' };
// HS256 keys shorter than the hash output weaken it (RFC 7518 §3.2).
const MIN_SECRET_LENGTH = 32;

export interface SigningKeyOptions {
  dataDir?: string;
  env?: NodeJS.ProcessEnv;
}

export async function loadSigningKeys(options: SigningKeyOptions = {}): Promise<SigningKeys> {
  const env = options.env ?? {};
  const fromEnv: Partial<Record<TokenFamily, Buffer>> = {};
  for (const family of TOKEN_FAMILIES) {
    const value = env[ENV[family]];
    if (value === undefined || value === '') continue;
    if (value.length < MIN_SECRET_LENGTH) throw new Error(`${ENV[family]} must be at least ${MIN_SECRET_LENGTH} characters`);
    fromEnv[family] = Buffer.from(value, 'utf8');
  }
  const missing = TOKEN_FAMILIES.filter((f) => !fromEnv[f]);
  const stored = missing.length && options.dataDir ? await storedKeys(path.join(options.dataDir, SIGNING_KEYS_FILE)) : {};
  const keys = {} as SigningKeys;
  for (const family of TOKEN_FAMILIES) {
    keys[family] = fromEnv[family] ?? (stored[family] ? Buffer.from(stored[family], 'base64url') : randomBytes(32));
  }
  if (keys.fhir.equals(keys.legacy)) throw new Error(`${ENV.fhir} and ${ENV.legacy} must differ: each token family needs its own key`);
  return keys;
}

async function storedKeys(file: string): Promise<Partial<Record<TokenFamily, string>>> {
  const fresh = () => Object.fromEntries(TOKEN_FAMILIES.map((f) => [f, randomBytes(32).toString('base64url')]));
  const { value } = await readOrCreateOwnerOnlyJson<Partial<Record<TokenFamily, string>>>(file, fresh);
  // A family added in a later version gets its key added to the existing file.
  const absent = TOKEN_FAMILIES.filter((f) => typeof value[f] !== 'string' || value[f] === '');
  if (absent.length === 0) return value;
  const completed = { ...value, ...Object.fromEntries(absent.map((f) => [f, randomBytes(32).toString('base64url')])) };
  await writeOwnerOnlyJson(file, completed);
  return completed;
}
