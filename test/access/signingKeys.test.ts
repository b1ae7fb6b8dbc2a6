import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { decodeJwt, decodeProtectedHeader, SignJWT } from 'jose';
import { loadSigningKeys, SIGNING_KEYS_FILE, SigningKeyFile } from '../../src/access/signingKeys';
import { TokenService } from '../../src/access/tokens';

const subject = { clientId: 'cli-a', customerId: 'cus-a', scopes: [] };
let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'trib-keys-'));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

describe('signing keys', () => {
  test('are created at first start in an owner-only file as private JWKs, one ES256 key per family, and reused after a restart', async () => {
    const first = await loadSigningKeys({ dataDir: dir, env: {} });
    expect(first.fhir.current.kid).not.toBe(first.legacy.current.kid);
    expect(first.fhir.current.publicJwk).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig' });
    expect(first.fhir.current.publicJwk).not.toHaveProperty('d');
    const file = path.join(dir, SIGNING_KEYS_FILE);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const again = await loadSigningKeys({ dataDir: dir, env: {} });
    expect([again.fhir.current.kid, again.legacy.current.kid]).toEqual([first.fhir.current.kid, first.legacy.current.kid]);
  });

  test('a token issued before a restart still verifies after it', async () => {
    const before = await TokenService.create({ publicUrl: 'http://x', dataDir: dir, env: {} });
    const token = before.issue('fhir', subject).access_token;
    const after = await TokenService.create({ publicUrl: 'http://x', dataDir: dir, env: {} });
    expect(after.verify('fhir', token).clientId).toBe('cli-a');
  });

  test('two servers starting together on one data folder agree on the keys', async () => {
    const [a, b] = await Promise.all([loadSigningKeys({ dataDir: dir, env: {} }), loadSigningKeys({ dataDir: dir, env: {} })]);
    expect(a.fhir.current.kid).toBe(b.fhir.current.kid);
  });

  test('keys from the environment win and are never written to disk', async () => {
    const jwk = (await loadSigningKeys()).fhir.current.privateKey.export({ format: 'jwk' });
    const other = (await loadSigningKeys()).legacy.current.privateKey.export({ format: 'jwk' });
    const keys = await loadSigningKeys({ dataDir: dir, env: { TOKEN_SIGNING_KEYS_FHIR: JSON.stringify(jwk), TOKEN_SIGNING_KEYS_LEGACY: JSON.stringify({ keys: [other] }) } });
    expect(keys.fhir.current.publicJwk.x).toBe(jwk.x);
    expect(keys.legacy.current.publicJwk.x).toBe(other.x);
    await expect(stat(path.join(dir, SIGNING_KEYS_FILE))).rejects.toThrow(/ENOENT/);
  });

  test('unusable, public-only or shared environment keys, and the retired HS256 secrets, are refused at start', async () => {
    await expect(loadSigningKeys({ env: { TOKEN_SIGNING_KEYS_FHIR: 'short' } })).rejects.toThrow(/TOKEN_SIGNING_KEYS_FHIR must be a private EC P-256 JWK/);
    const keys = await loadSigningKeys();
    await expect(loadSigningKeys({ env: { TOKEN_SIGNING_KEYS_FHIR: JSON.stringify(keys.fhir.current.publicJwk) } })).rejects.toThrow(/private EC P-256 JWK/);
    const same = JSON.stringify(keys.fhir.current.privateKey.export({ format: 'jwk' }));
    await expect(loadSigningKeys({ env: { TOKEN_SIGNING_KEYS_FHIR: same, TOKEN_SIGNING_KEYS_LEGACY: same } })).rejects.toThrow(/must differ/);
    await expect(loadSigningKeys({ env: { TOKEN_SECRET_FHIR: 'f'.repeat(40) } })).rejects.toThrow(/TOKEN_SECRET_FHIR is no longer used/);
  });

  test('a key file of the HS256 era is replaced by key pairs, owner-only', async () => {
    const file = path.join(dir, SIGNING_KEYS_FILE);
    await writeFile(file, JSON.stringify({ fhir: Buffer.alloc(32, 7).toString('base64url') }), { mode: 0o644 });
    const keys = await loadSigningKeys({ dataDir: dir, env: {} });
    const stored = JSON.parse(await readFile(file, 'utf8'));
    expect(stored.fhir[0].jwk.kid).toBe(keys.fhir.current.kid);
    expect(stored.legacy[0].jwk.kid).toBe(keys.legacy.current.kid);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
  });

  test('a rotation keeps the old key verifying for the token lifetime, and another process on the folder picks the new key up', async () => {
    let clock = Date.UTC(2026, 0, 1);
    const a = new TokenService({ publicUrl: 'http://x', ttlSeconds: 60, keys: await SigningKeyFile.open({ dataDir: dir, env: {} }), now: () => clock });
    const b = new TokenService({ publicUrl: 'http://x', ttlSeconds: 60, keys: await SigningKeyFile.open({ dataDir: dir, env: {} }), now: () => clock });
    const old = a.issue('fhir', subject).access_token;
    const oldKey = (await loadSigningKeys({ dataDir: dir, env: {} })).fhir.current;
    const [rotated] = await a.rotate('fhir');
    expect(rotated.kid).not.toBe(rotated.previousKid);
    const fresh = a.issue('fhir', subject).access_token;
    expect(decodeProtectedHeader(fresh).kid).toBe(rotated.kid);
    // b has never seen the new kid: it re-reads the file rather than refusing.
    expect(b.verify('fhir', fresh).clientId).toBe('cli-a');
    expect(b.verify('fhir', old).clientId).toBe('cli-a');
    expect(a.jwks('fhir').keys.map((k) => k.kid)).toEqual([rotated.kid, rotated.previousKid]);
    // The legacy family was not rotated.
    expect(a.jwks('legacy').keys).toHaveLength(1);
    clock += 120_000;
    expect(a.jwks('fhir').keys.map((k) => k.kid)).toEqual([rotated.kid]);
    // Past its grace the old key verifies nothing, even a token (made by someone holding it) that has not expired.
    const iat = Math.floor(clock / 1000);
    const late = await new SignJWT({ ...decodeJwt(old), iat, exp: iat + 60 }).setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: oldKey.kid }).sign(oldKey.privateKey);
    expect(() => a.verify('fhir', late)).toThrow(expect.objectContaining({ status: 401 }));
    expect(a.verify('fhir', a.issue('fhir', subject).access_token).clientId).toBe('cli-a');
  });

  test('a key file damaged under a running server leaves its keys in place: tokens still verify, unknown ones are a 401', async () => {
    const service = await TokenService.create({ publicUrl: 'http://x', dataDir: dir, env: {} });
    const token = service.issue('fhir', subject).access_token;
    await writeFile(path.join(dir, SIGNING_KEYS_FILE), JSON.stringify({ fhir: [{ jwk: { kty: 'EC' }, createdAt: 'x' }] }));
    const stranger = new TokenService({ publicUrl: 'http://x', keys: await loadSigningKeys() }).issue('fhir', subject).access_token;
    expect(() => service.verify('fhir', stranger)).toThrow(expect.objectContaining({ status: 401 }));
    expect(service.verify('fhir', token).clientId).toBe('cli-a');
  });

  test('TOKEN_TTL_SECONDS sets the token lifetime', async () => {
    const service = await TokenService.create({ publicUrl: 'http://x', env: { TOKEN_TTL_SECONDS: '60' } });
    expect(service.issue('fhir', subject).expires_in).toBe(60);
    await expect(TokenService.create({ publicUrl: 'http://x', env: { TOKEN_TTL_SECONDS: 'soon' } })).rejects.toThrow(/TOKEN_TTL_SECONDS/);
  });
});
