import { randomBytes } from 'node:crypto';

/**
 * Ids of tenancy rows (`cus-…`, `ep-…`, `cli-…`, `org-…`, `team-…`, `prac-…`): the prefix, a hyphen and 16
 * lower-case RFC 4648 base32 characters (80 random bits) — URL-safe, unambiguous read aloud, valid FHIR ids.
 */
const ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567';

export function newId(prefix: string): string {
  const bytes = randomBytes(10);
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += ALPHABET[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  return `${prefix}-${out}`;
}
