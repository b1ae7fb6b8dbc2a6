import { resourceBodies } from '../lib/dataset';
import { startFloorServer } from '../lib/floors';
import { runCannon } from '../lib/load';
import { ms, ratio, round } from '../lib/stats';
import { type BenchContext, backlogNote, bearer, durationMs, ensureDataset, getJson, report, sampleIds, settle, tenant } from './context';

/**
 * read: `GET Patient/{id}` and `GET Observation/{id}` (a typical clinical resource) at a fixed number of
 * connections with autocannon → req/s and p50/p95/p99, cycling through 50 different ids. Floor: a bare
 * node:http server answering the same ids with one primary-key SELECT over the same driver.
 */
export async function readScenario(ctx: BenchContext): Promise<void> {
  const queued = await settle(ctx);
  await ensureDataset(ctx, Math.min(ctx.settings.patients, 10));
  const t = await tenant(ctx);
  const duration = durationMs(ctx, 4_000, 15_000);
  const connections = ctx.settings.concurrency;
  const ids = { Patient: await sampleIds(ctx, 'Patient', 50), Observation: await sampleIds(ctx, 'Observation', 50) };

  // PGlite is one process's store: its floor gets its own copy of the same rows (plus the dataset's bodies
  // as filler, so the table is not trivially small).
  const rows: { store: string; type: string; id: string; content: unknown }[] = [];
  if (ctx.store === 'pglite') {
    for (const [type, list] of Object.entries(ids)) {
      for (const id of list) rows.push({ store: t.endpointId, type, id, content: (await getJson(`${t.base}/${type}/${id}`, bearer(t))).json });
    }
    resourceBodies(0, Math.min(ctx.dataset.patients, 20)).forEach((body, i) =>
      rows.push({ store: t.endpointId, type: (JSON.parse(body) as { resourceType: string }).resourceType, id: `filler-${i}`, content: JSON.parse(body) }),
    );
  }
  const floor = await startFloorServer(ctx.store, ctx.databaseUrl, rows);
  try {
    for (const [type, list] of Object.entries(ids)) {
      const serverRequests = list.map((id) => ({ url: `${t.base}/${type}/${id}`, headers: bearer(t) }));
      const floorRequests = list.map((id) => ({ url: `${floor.url}/${t.endpointId}/${type}/${id}` }));
      // Each side gets a short untimed warm-up (JIT, pools, caches) before its timed run.
      const warmup = Math.min(2_000, Math.max(300, duration / 4));
      await runCannon({ requests: serverRequests, connections, durationMs: warmup });
      const server = await runCannon({ requests: serverRequests, connections, durationMs: duration });
      await runCannon({ requests: floorRequests, connections, durationMs: warmup });
      const bare = await runCannon({ requests: floorRequests, connections, durationMs: duration });
      const failures = server.errors + server.statusErrors;
      const failNote = failures ? `${failures} failed requests (first HTTP ${server.firstFailureStatus ?? 'error'})` : '';
      const floorNote = bare.errors + bare.statusErrors ? `floor: ${bare.errors + bare.statusErrors} failed requests` : '';
      const note = [failNote, floorNote, backlogNote(queued).note ?? ''].filter(Boolean).join('; ');
      report(ctx, {
        id: `read.${type}.rps`,
        scenario: 'read',
        metric: `GET ${type}/{id} throughput (${connections} connections)`,
        value: round(server.rps),
        unit: 'req/s',
        floor: round(bare.rps),
        ratio: ratio(server.rps, bare.rps),
        target: '≥ 5,000 and ≥ 85% of floor',
        ...(note ? { note } : {}),
      });
      report(ctx, {
        id: `read.${type}.p99`,
        scenario: 'read',
        metric: `GET ${type}/{id} latency p99`,
        value: round(server.p99, 1),
        unit: `ms (p50 ${ms(server.p50)}, p95 ${ms(server.p95)})`,
        floor: round(bare.p99, 1),
        ratio: ratio(server.p99, bare.p99),
        target: 'p99 < 15 ms',
      });
    }
    await auditCost(
      ctx,
      ids.Observation.map((id) => ({ url: `${t.base}/Observation/${id}`, headers: bearer(t) })),
      duration,
    );
  } finally {
    await floor.stop();
  }
}

/**
 * The audit log's price on reads (issue 13: it must not halve read throughput): the same Observation read
 * load with AUDIT=off and AUDIT=on (each a restart of the same server on the same data), alternated over two
 * rounds so that a shared machine's drifting load does not land on one side, reported as the ratio of the
 * totals on/off. The server is left with the audit on, its default.
 */
async function auditCost(ctx: BenchContext, requests: { url: string; headers: Record<string, string> }[], duration: number): Promise<void> {
  const connections = ctx.settings.concurrency;
  const warmup = Math.min(2_000, Math.max(300, duration / 4));
  const measure = async (audit: 'on' | 'off') => {
    await ctx.server.restart({ AUDIT: audit });
    await runCannon({ requests, connections, durationMs: warmup });
    return runCannon({ requests, connections, durationMs: duration });
  };
  const runs: { off: Awaited<ReturnType<typeof measure>>; on: Awaited<ReturnType<typeof measure>> }[] = [];
  for (let round = 0; round < 2; round++) runs.push({ off: await measure('off'), on: await measure('on') });
  const sum = (side: 'on' | 'off', f: (r: Awaited<ReturnType<typeof measure>>) => number) => runs.reduce((n, r) => n + f(r[side]), 0);
  const on = sum('on', (r) => r.rps) / runs.length;
  const off = sum('off', (r) => r.rps) / runs.length;
  const failures = sum('on', (r) => r.errors + r.statusErrors) + sum('off', (r) => r.errors + r.statusErrors);
  const rounds = runs.map((r) => `${round(r.on.rps)}/${round(r.off.rps)}`).join(', ');
  report(ctx, {
    id: 'read.audit.ratio',
    scenario: 'read',
    metric: `GET Observation/{id} throughput with the audit log on, against AUDIT=off (${connections} connections; on/off per round: ${rounds} req/s; p99 on ${ms(runs[runs.length - 1].on.p99)}, off ${ms(runs[runs.length - 1].off.p99)})`,
    value: round(on),
    unit: 'req/s',
    floor: round(off),
    ratio: ratio(on, off),
    target: '≥ 50% of AUDIT=off',
    ...(failures ? { note: `${failures} failed requests` } : {}),
  });
}
