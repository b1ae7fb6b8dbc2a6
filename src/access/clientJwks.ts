import { createPublicKey, type JsonWebKey } from 'node:crypto';

/**
 * Checks the JWKS a client registers for private_key_jwt (SMART Backend Services): public keys only (a private
 * member such as `d` means the client handed over its secret: refused rather than stored), each able to verify
 * the assertion algorithms the token endpoint accepts, RS384 (RSA of at least 2048 bits) or ES384 (EC P-384).
 * Returns the set as stored, or a message naming the offending key and member.
 */
export interface ClientJwks {
  keys: (JsonWebKey & { kid?: string; alg?: string; use?: string })[];
}

const MAX_KEYS = 10;
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];
const PUBLIC_MEMBERS: Record<string, string[]> = { RSA: ['kty', 'n', 'e'], EC: ['kty', 'crv', 'x', 'y'] };
const OPTIONAL_MEMBERS = ['kid', 'alg', 'use', 'key_ops', 'x5c', 'x5t', 'x5t#S256', 'x5u', 'ext'];
const ALGORITHM: Record<string, string> = { RSA: 'RS384', EC: 'ES384' };

export type JwksCheck = { jwks: ClientJwks } | { error: string };

export function checkClientJwks(value: unknown): JwksCheck {
  if (value === null || typeof value !== 'object' || Array.isArray(value) || !Array.isArray((value as { keys?: unknown }).keys)) {
    return { error: "'jwks' must be a JSON Web Key Set: an object with a 'keys' list (RFC 7517 §5)" };
  }
  const extra = Object.keys(value).filter((k) => k !== 'keys');
  if (extra.length) return { error: `'jwks' has unknown members: ${extra.join(', ')}` };
  const keys = (value as { keys: unknown[] }).keys;
  if (keys.length === 0 || keys.length > MAX_KEYS) return { error: `'jwks' must hold 1 to ${MAX_KEYS} keys` };
  const kids = new Set<string>();
  for (const [i, key] of keys.entries()) {
    const where = `jwks.keys[${i}]`;
    if (key === null || typeof key !== 'object' || Array.isArray(key)) return { error: `${where} is not a JSON object` };
    const jwk = key as Record<string, unknown>;
    const secret = PRIVATE_MEMBERS.find((m) => m in jwk);
    if (secret) return { error: `${where} holds the private member '${secret}': register public keys only, and keep the private key to yourself` };
    const kty = jwk.kty as string;
    if (!PUBLIC_MEMBERS[kty]) return { error: `${where}.kty must be RSA (RS384) or EC (ES384)` };
    const unknown = Object.keys(jwk).filter((m) => !PUBLIC_MEMBERS[kty].includes(m) && !OPTIONAL_MEMBERS.includes(m));
    if (unknown.length) return { error: `${where} has unknown members: ${unknown.join(', ')}` };
    if (jwk.alg !== undefined && jwk.alg !== ALGORITHM[kty])
      return { error: `${where}.alg must be ${ALGORITHM[kty]} for a ${kty} key (the token endpoint accepts RS384 and ES384)` };
    if (jwk.use !== undefined && jwk.use !== 'sig') return { error: `${where}.use must be 'sig'` };
    if (kty === 'EC' && jwk.crv !== 'P-384') return { error: `${where}.crv must be P-384 (ES384)` };
    if (jwk.kid !== undefined) {
      if (typeof jwk.kid !== 'string' || jwk.kid === '') return { error: `${where}.kid must be a non-empty string` };
      if (kids.has(jwk.kid)) return { error: `${where}.kid '${jwk.kid}' appears twice` };
      kids.add(jwk.kid);
    }
    let size: number | undefined;
    try {
      size = createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' }).asymmetricKeyDetails?.modulusLength;
    } catch (err) {
      return { error: `${where} is not a usable public key (${(err as Error).message})` };
    }
    if (kty === 'RSA' && (size === undefined || size < 2048)) return { error: `${where} is an RSA key of ${size} bits: at least 2048 are required` };
  }
  if (keys.length > 1 && kids.size !== keys.length) return { error: "Every key of a 'jwks' with several keys needs its own 'kid'" };
  return { jwks: value as ClientJwks };
}
