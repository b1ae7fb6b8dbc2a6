import { chmod, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ADMIN_CREDENTIAL_FILE, isAdminToken, loadAdminCredential } from '../../src/access/adminCredential';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'trib-admin-'));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

describe('admin credential', () => {
  test('first start creates a token in DATA_DIR readable by the owner only, with the server URL', async () => {
    const dataDir = path.join(dir, 'data'); // not there yet
    const created = await loadAdminCredential({ dataDir, env: {}, url: 'http://localhost:4000' });
    expect(created.source).toBe('created');
    const file = path.join(dataDir, ADMIN_CREDENTIAL_FILE);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(JSON.parse(await readFile(file, 'utf8'))).toEqual({ url: 'http://localhost:4000', token: created.token });
  });

  test('later starts reuse the token, record a new URL and tighten loose permissions', async () => {
    const first = await loadAdminCredential({ dataDir: dir, env: {}, url: 'http://localhost:4000' });
    const file = path.join(dir, ADMIN_CREDENTIAL_FILE);
    await chmod(file, 0o644);
    const again = await loadAdminCredential({ dataDir: dir, env: {}, url: 'http://localhost:5000' });
    expect(again).toMatchObject({ token: first.token, source: 'file' });
    expect(JSON.parse(await readFile(file, 'utf8')).url).toBe('http://localhost:5000');
    expect((await stat(file)).mode & 0o777).toBe(0o600);
  });

  test('ADMIN_TOKEN from the environment is used and nothing is written', async () => {
    const token = 'x'.repeat(40);
    expect(await loadAdminCredential({ dataDir: dir, env: { ADMIN_TOKEN: token } })).toEqual({ token, source: 'env' });
    await expect(stat(path.join(dir, ADMIN_CREDENTIAL_FILE))).rejects.toThrow(/ENOENT/);
    await expect(loadAdminCredential({ dataDir: dir, env: { ADMIN_TOKEN: 'short' } })).rejects.toThrow(/at least 32/);
  });

  test('the token check accepts exactly the admin token', () => {
    expect(isAdminToken('a'.repeat(40), 'a'.repeat(40))).toBe(true);
    expect(isAdminToken('a'.repeat(39), 'a'.repeat(40))).toBe(false);
    expect(isAdminToken(undefined, 'a'.repeat(40))).toBe(false);
  });
});
