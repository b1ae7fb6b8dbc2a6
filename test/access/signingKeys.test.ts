import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadSigningKeys, SIGNING_KEYS_FILE } from '../../src/access/signingKeys';
import { TokenService } from '../../src/access/tokens';

const subject = { clientId: 'cli-a', customerId: 'cus-a', scopes: [] };
let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'trib-keys-'));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

describe('signing keys', () => {
  test('are created at first start in an owner-only file, one per family, and reused after a restart', async () => {
    const first = await loadSigningKeys({ dataDir: dir, env: {} });
    expect(first.fhir.equals(first.legacy)).toBe(false);
    const file = path.join(dir, SIGNING_KEYS_FILE);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const again = await loadSigningKeys({ dataDir: dir, env: {} });
    expect(again.fhir.equals(first.fhir) && again.legacy.equals(first.legacy)).toBe(true);
  });

  test('a token issued before a restart still verifies after it', async () => {
    const before = await TokenService.create({ publicUrl: 'http://x', dataDir: dir, env: {} });
    const token = before.issue('fhir', subject).access_token;
    const after = await TokenService.create({ publicUrl: 'http://x', dataDir: dir, env: {} });
    expect(after.verify('fhir', token).clientId).toBe('cli-a');
  });

  test('two servers starting together on one data folder agree on the keys', async () => {
    const [a, b] = await Promise.all([loadSigningKeys({ dataDir: dir, env: {} }), loadSigningKeys({ dataDir: dir, env: {} })]);
    expect(a.fhir.equals(b.fhir)).toBe(true);
  });

  test('keys from the environment win and are never written to disk', async () => {
    const env = { TOKEN_SECRET_FHIR: 'f'.repeat(40), TOKEN_SECRET_LEGACY: 'l'.repeat(40) };
    const keys = await loadSigningKeys({ dataDir: dir, env });
    expect(keys.fhir.toString()).toBe('f'.repeat(40));
    await expect(stat(path.join(dir, SIGNING_KEYS_FILE))).rejects.toThrow(/ENOENT/);
  });

  test('short or shared environment keys are refused at start', async () => {
    await expect(loadSigningKeys({ env: { TOKEN_SECRET_FHIR: 'short' } })).rejects.toThrow(/TOKEN_SECRET_FHIR must be at least 32/);
    const same = 's'.repeat(40);
    await expect(loadSigningKeys({ env: { TOKEN_SECRET_FHIR: same, TOKEN_SECRET_LEGACY: same } })).rejects.toThrow(/must differ/);
  });

  test('a key file from an older version missing a family is completed, keeping the existing key', async () => {
    const file = path.join(dir, SIGNING_KEYS_FILE);
    await writeFile(file, JSON.stringify({ fhir: Buffer.alloc(32, 7).toString('base64url') }), { mode: 0o644 });
    const keys = await loadSigningKeys({ dataDir: dir, env: {} });
    expect(keys.fhir.equals(Buffer.alloc(32, 7))).toBe(true);
    const stored = JSON.parse(await readFile(file, 'utf8'));
    expect(Buffer.from(stored.legacy, 'base64url').equals(keys.legacy)).toBe(true);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
  });

  test('TOKEN_TTL_SECONDS sets the token lifetime', async () => {
    const service = await TokenService.create({ publicUrl: 'http://x', env: { TOKEN_TTL_SECONDS: '60' } });
    expect(service.issue('fhir', subject).expires_in).toBe(60);
    await expect(TokenService.create({ publicUrl: 'http://x', env: { TOKEN_TTL_SECONDS: 'soon' } })).rejects.toThrow(/TOKEN_TTL_SECONDS/);
  });
});
