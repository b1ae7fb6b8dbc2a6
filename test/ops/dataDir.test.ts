import { mkdtemp, rm, stat, chmod, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ensureDataDir } from '../../src/ops/dataDir';

describe('the data folder', () => {
  let root: string;
  beforeEach(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'tributary-datadir-'));
  });
  afterEach(async () => rm(root, { recursive: true, force: true }));

  test('a DATA_DIR that does not exist yet is created with its parents, owner-only', async () => {
    const dir = path.join(root, 'a', 'b', 'data');
    await ensureDataDir(dir);
    expect((await stat(dir)).isDirectory()).toBe(true);
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
  });

  test('an existing folder open to others is tightened to 0700', async () => {
    const dir = path.join(root, 'open');
    await mkdir(dir);
    await chmod(dir, 0o755);
    await ensureDataDir(dir);
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
  });
});
