import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { measureStart, type StartMeasurement } from '../lib/startup';
import { type BenchContext, report } from './context';

/**
 * start: time from `node dist/src/server.js` to its first answered request, and its idle memory, on the run's
 * store. On the embedded store twice: a first start (a data folder that does not exist yet: the database is
 * copied from the install's pre-migrated template, src/store/pgliteTemplate.ts, or created and migrated when
 * there is none) and a restart on that folder (an installed checkout's `npm start`). On PostgreSQL,
 * one start against the run's already migrated database. Target: the first response within 5 s.
 */
export async function startScenario(ctx: BenchContext): Promise<void> {
  const figures = (label: string, id: string, m: StartMeasurement) => {
    report(ctx, { id: `start.${id}.ms`, scenario: 'start', metric: `time to first response, ${label}`, value: m.firstResponseMs, unit: 'ms', target: '< 5,000 ms' });
    report(ctx, { id: `start.${id}.rss`, scenario: 'start', metric: `idle RSS after start, ${label}`, value: m.idleRssMb, unit: 'MB', target: '≤ 300 MB' });
    report(ctx, {
      id: `start.${id}.heap`,
      scenario: 'start',
      metric: `V8 heap used after start, ${label}`,
      value: m.heapUsedMb,
      unit: `MB (of ${m.heapTotalMb ?? '?'} MB)`,
    });
  };
  if (ctx.store === 'postgres') {
    if (!ctx.databaseUrl) throw new Error('the PostgreSQL run has no database URL');
    figures('PostgreSQL, migrated database', 'postgres', await measureStart({ env: { DATABASE_URL: ctx.databaseUrl, AGGREGATION_WORKER: 'off' } }));
    return;
  }
  const root = mkdtempSync(path.join(tmpdir(), 'tributary-start-'));
  const dataDir = path.join(root, 'data'); // does not exist yet
  try {
    ctx.log('start: first start on a new data folder');
    figures('embedded store, first start (new data folder)', 'first', await measureStart({ dataDir }));
    ctx.log('start: restart on that folder');
    figures('embedded store, restart (installed checkout)', 'restart', await measureStart({ dataDir }));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}
