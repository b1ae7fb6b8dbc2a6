import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from '../../bench/lib/server';
import { measureStart } from '../../bench/lib/startup';

/** The start measurement of the bench, on real server processes of the embedded store: a first start, then a restart. */
test('the start measurement times the first response and reads idle memory, on a new data folder and again on it', async () => {
  await promisify(execFile)(process.execPath, ['scripts/build.js', '--if-stale'], { cwd: ROOT, env: { ...process.env, NODE_OPTIONS: '' } });
  const root = mkdtempSync(path.join(tmpdir(), 'tributary-start-test-'));
  const dataDir = path.join(root, 'not-yet');
  try {
    const first = await measureStart({ dataDir, idleMs: 200 });
    const again = await measureStart({ dataDir, idleMs: 200 });
    for (const m of [first, again]) {
      expect(m.firstResponseMs).toBeGreaterThan(0);
      expect(m.idleRssMb).toBeGreaterThan(50);
      expect(m.heapUsedMb).toBeGreaterThan(10);
      expect(m.heapTotalMb).toBeGreaterThanOrEqual(m.heapUsedMb!);
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}, 300_000);
