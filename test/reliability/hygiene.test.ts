import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ensureDataDir } from '../../src/ops/dataDir';
import { redactUrl } from '../../src/ops/requestLog';
import { TokenService } from '../../src/access/tokens';
import { loadAdminCredential } from '../../src/access/adminCredential';
import { startTestServer, type TestServer } from '../support/testServer';

/** Issue 16 item 5: no credential from a URL reaches the log, and the data folder and its key files are owner-only. */
describe('the request log', () => {
  let server: TestServer;
  const lines: string[] = [];
  beforeAll(async () => {
    server = await startTestServer({ LOG_LEVEL: 'info' }, { logStream: { write: (line: string) => void lines.push(line) } });
  });
  afterAll(() => server.close());

  test('query-string credentials are redacted, other parameters kept', async () => {
    await fetch(`${server.url}/healthz?access_token=tok-SECRET-1&client_secret=sec-SECRET-2&code=code-SECRET-3&password=pw-SECRET-4&Token=tok-SECRET-5&name=Smith`);
    await fetch(`${server.url}/fhir/aggregated/Patient?access_token=tok-SECRET-6&_count=1`);
    const log = lines.join('');
    expect(log).toContain('/healthz?');
    expect(log).toContain('name=Smith');
    expect(log).toContain('access_token=[REDACTED]');
    expect(log).not.toMatch(/SECRET/);
  });

  test('redaction works on encoded names and leaves URLs without a query alone', () => {
    expect(redactUrl('/x?client%5Fsecret=abc&a=1')).toBe('/x?client%5Fsecret=[REDACTED]&a=1');
    expect(redactUrl('/fhir/Patient/1')).toBe('/fhir/Patient/1');
    expect(redactUrl('/x?code')).toBe('/x?code');
  });
});

describe('the data folder', () => {
  let root: string;
  beforeEach(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'tributary-hygiene-'));
  });
  afterEach(() => rm(root, { recursive: true, force: true }));

  test('DATA_DIR is created 700 and the signing keys and admin credential in it are 600', async () => {
    const dir = path.join(root, 'data');
    await ensureDataDir(dir);
    await TokenService.create({ dataDir: dir, publicUrl: 'http://127.0.0.1', env: {} });
    await loadAdminCredential({ dataDir: dir, env: {}, url: 'http://127.0.0.1' });
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
    const { readdir } = await import('node:fs/promises');
    const files = (await readdir(dir, { withFileTypes: true })).filter((f) => f.isFile());
    expect(files.length).toBeGreaterThan(0);
    for (const f of files) expect([f.name, (await stat(path.join(dir, f.name))).mode & 0o777]).toEqual([f.name, 0o600]);
  });
});
