import { SignJWT, type JWTPayload } from 'jose';
import type { TokenFamily } from '../../src/access/caller';
import { loadSigningKeys } from '../../src/access/signingKeys';

/**
 * Signs any claims with a test server's own current signing key (read from its data folder, as an attacker
 * holding the key file could), using jose rather than the server's code, so a test can show that a
 * correctly signed token is still refused for what its claims or header say.
 */
export async function forgeToken(dataDir: string, family: TokenFamily, claims: JWTPayload, header: Record<string, unknown> = {}): Promise<string> {
  const key = (await loadSigningKeys({ dataDir }))[family].current;
  return new SignJWT(claims).setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: key.kid, ...header }).sign(key.privateKey);
}
