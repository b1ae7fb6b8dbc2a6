import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseOptions, runBench } from '../../bench/run';

/**
 * The harness itself, on a tiny dataset: it must start the server on each store, run every scenario and
 * produce every figure with its floor where the scenario has one. The values are not checked — only that
 * they exist.
 */
test('a tiny bench run produces every figure on both stores and saves them', async () => {
  const out = mkdtempSync(path.join(tmpdir(), 'bench-results-'));
  const options = parseOptions(['--quick', '--patients', '2', '--sizes', '4', '--pglite-patients', '2', '--duration-ms', '500', '--out', out, '--no-build']);
  // Not the scale scenario: it starts a private primary, a replica and up to 4 processes per layout (minutes on
  // this machine); its replica routing has its own test (test/scale/replica.test.ts).
  const { runs } = await runBench({ ...options, scenarios: options.scenarios.filter((s) => s !== 'scale'), build: true });
  expect(runs.map((r) => r.store)).toEqual(['postgres', 'pglite']);
  for (const { figures, file } of runs) {
    const metrics = figures.map((f) => `${f.scenario}: ${f.metric}`);
    expect(figures.filter((f) => f.metric === 'failed')).toEqual([]);
    for (const scenario of ['ingest', 'aggregate', 'read', 'search', 'memory', 'graphql', 'start', 'live']) {
      expect(figures.some((f) => f.scenario === scenario)).toBe(true);
    }
    const ingest = figures.find((f) => f.scenario === 'ingest')!;
    expect(ingest.value).toBeGreaterThan(0);
    expect(ingest.floor).toBeGreaterThan(0);
    expect(ingest.ratio).toBeGreaterThan(0);
    // CPU per resource, the figure that holds on a shared machine.
    expect(figures.find((f) => f.id === 'ingest.serverCpu')).toMatchObject({ unit: 'µs', value: expect.any(Number) });
    // The indexed floor writes what the server writes per resource: on PostgreSQL the same count of index rows.
    const indexed = figures.find((f) => f.id === 'ingest.indexedFloor')!;
    expect(indexed).toMatchObject({ value: ingest.value, floor: expect.any(Number), target: '≥ 50% of the indexed floor' });
    expect(indexed.floor).toBeGreaterThan(0);
    if (file.includes('postgres')) {
      const [, server, floor] = /index rows per resource: server ([\d.]+), floor ([\d.]+)/.exec(indexed.metric) ?? [];
      expect(Number(server)).toBeGreaterThan(5);
      // Within 1 %: the server's store also holds the bench tenant's own source Organization.
      expect(Math.abs(Number(floor) - Number(server)) / Number(server)).toBeLessThan(0.01);
    }
    // The aggregation floor (the aggregation is on): upstream rows plus the aggregation's, the same rows per
    // resource per table as the server wrote (PostgreSQL: counted on both sides after the run).
    const aggregated = figures.find((f) => f.id === 'ingest.aggregatedFloor')!;
    expect(aggregated).toMatchObject({ value: ingest.value, floor: expect.any(Number), target: '≥ 50% of the aggregation floor' });
    expect(aggregated.floor).toBeGreaterThan(0);
    expect(figures.find((f) => f.id === 'ingest.aggregatedFloor.rate')).toMatchObject({ unit: 'res/s', floor: indexed.floor });
    if (file.includes('postgres')) {
      for (const table of ['resource (aggregated)', 'search rows (aggregated)', 'agg_member', 'agg_access', 'agg_change']) {
        const [, server, floor] = new RegExp(`${table.replace(/[()]/g, '\\$&')} ([\\d.]+)/([\\d.]+)`).exec(aggregated.metric) ?? [];
        expect(Number(server)).toBeGreaterThan(0.5);
        expect(Math.abs(Number(floor) - Number(server)) / Number(server)).toBeLessThan(0.03);
      }
      expect(figures.find((f) => f.id === 'ingest.aggregatedFloor.dbCpu')).toMatchObject({ unit: 'µs', value: expect.any(Number) });
    }
    expect(figures.find((f) => f.id === 'memory.idle')).toMatchObject({ value: expect.any(Number), target: '≤ 300 MB' });
    // Growing the dataset for the search sizes is an ingest with search indexing alone (PostgreSQL only has sizes).
    // The dataset is 3 patients by then (2 loaded, and the live scenario's probe patient): it grows to 4.
    if (file.includes('postgres')) expect(figures.find((f) => f.id === 'ingest.rate.4')).toMatchObject({ unit: 'res/s', floor: expect.any(Number) });
    // Patient and Observation reads against their floor, and the audit log on against AUDIT=off.
    const reads = figures.filter((f) => f.scenario === 'read' && f.unit === 'req/s');
    expect(reads.map((f) => f.id)).toEqual(['read.Patient.rps', 'read.Observation.rps', 'read.audit.ratio']);
    for (const r of reads) expect(r.floor).toBeGreaterThan(0);
    for (const name of ['token', 'string', 'date range', 'reference', 'chain', '_include']) {
      expect(metrics.some((m) => m.startsWith(`search: ${name} @`))).toBe(true);
    }
    const saved = JSON.parse(readFileSync(file, 'utf8'));
    expect(saved.machine.cores).toBeGreaterThan(0);
    expect(saved.commit).toEqual(expect.any(String));
    expect(saved.figures).toHaveLength(figures.length);
  }
}, 1_200_000); // both stores, every scenario: past 5 minutes on a loaded shared machine (load average 18 on 2 cores)
