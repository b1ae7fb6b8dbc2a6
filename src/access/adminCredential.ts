import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import path from 'node:path';
import { readOrCreateOwnerOnlyJson, writeOwnerOnlyJson } from './ownerOnlyFile';

/**
 * The admin credential: a bearer token for the admin API, which the admin CLI presents.
 * `ADMIN_TOKEN` in the environment wins (several servers, secrets managers); otherwise a token is created
 * at first start in `<dataDir>/admin-credential.json`, readable by the owner only, where the CLI on the
 * same machine finds it. The file also records the server's URL so the CLI knows where to call.
 */
export const ADMIN_CREDENTIAL_FILE = 'admin-credential.json';
const MIN_TOKEN_LENGTH = 32;

export interface AdminCredentialFile {
  url?: string;
  token: string;
}

export interface AdminCredential {
  token: string;
  /** Where it came from: the environment, an existing file, or a file created just now. */
  source: 'env' | 'file' | 'created';
  /** The credential file, when one is used. */
  file?: string;
}

export interface AdminCredentialOptions {
  dataDir: string;
  env?: NodeJS.ProcessEnv;
  /** The URL the CLI should call (the server's public URL); kept up to date in the file. */
  url?: string;
}

export async function loadAdminCredential(options: AdminCredentialOptions): Promise<AdminCredential> {
  const env = options.env ?? process.env;
  if (env.ADMIN_TOKEN) {
    if (env.ADMIN_TOKEN.length < MIN_TOKEN_LENGTH) throw new Error(`ADMIN_TOKEN must be at least ${MIN_TOKEN_LENGTH} characters`);
    return { token: env.ADMIN_TOKEN, source: 'env' };
  }
  const file = path.join(options.dataDir, ADMIN_CREDENTIAL_FILE);
  const { value, created } = await readOrCreateOwnerOnlyJson<AdminCredentialFile>(file, () => ({
    url: options.url,
    token: `adm-${randomBytes(32).toString('base64url')}`,
  }));
  if (typeof value.token !== 'string' || value.token.length < MIN_TOKEN_LENGTH) {
    throw new Error(`${file} has no usable token; remove it to have a new one created`);
  }
  // A restart on another port or public URL must not leave the CLI calling the old one.
  if (!created && options.url && value.url !== options.url) await writeOwnerOnlyJson(file, { ...value, url: options.url });
  return { token: value.token, source: created ? 'created' : 'file', file };
}

/** Constant-time check of a presented admin token (hashing first evens out the lengths). */
export function isAdminToken(presented: string | undefined, expected: string): boolean {
  if (presented === undefined) return false;
  const digest = (s: string) => createHash('sha256').update(s).digest();
  return timingSafeEqual(digest(presented), digest(expected));
}
