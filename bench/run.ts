import { execSync } from 'node:child_process';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_POSTGRES, type BenchDatabase, freshDatabase } from './lib/database';
import type { StoreKind } from './lib/floors';
import { type StoreRun, gitCommit, header, machineFacts, markdown, save } from './lib/report';
import { ROOT, startServer } from './lib/server';
import type { BenchContext, BenchSettings, Figure } from './scenarios/context';
import { SCENARIOS } from './scenarios/index';
import { memoryFigure } from './scenarios/memory';

/**
 * `npm run bench [-- options]`: builds, then for each store starts the server as its own process
 * (`node dist/src/server.js`) on a fresh database, runs the scenarios with load from separate processes,
 * prints a markdown table per store and saves it with the raw figures under bench/results/.
 *
 *   --quick                 smoke run (< 3 minutes): small datasets, short loads
 *   --scenario NAME         one scenario (repeat or comma-separate for several): ingest, aggregate, read,
 *                           graphql, search, memory, start
 *   --store LIST            postgres,pglite (default both; PostgreSQL from DATABASE_URL, default
 *                           postgresql://postgres@127.0.0.1:5432/, where a fresh database is created and dropped)
 *   --patients N            patients ingested on PostgreSQL (default 500; quick 30)
 *   --sizes A,B             further search sizes in patients on PostgreSQL (default 4200 ≈ 1M resources; quick 100)
 *   --pglite-patients N     the same for the embedded store (default 20; quick 5)
 *   --pglite-sizes A,B      (default none)
 *   --concurrency N         connections for the read scenario (default 32)
 *   --ingest-concurrency N  transaction Bundles in flight (default 4)
 *   --ingest-bundles prebuilt|streamed  the timed ingest's Bundles made into a file before the load (default), or
 *                           made on the fly as the load client sends them (as before 2026-12-05's seventh session)
 *   --aggregation on|off    run the server's aggregation worker (default on)
 *   --duration-ms N         every timed load's duration (default per scenario)
 *   --drain-timeout-s N     longest wait for the aggregation queue to drain (default 1800; quick 90)
 *   --out DIR               where results go (default bench/results)
 *   --no-build              skip `npm run build`
 *
 * BENCH_SERVER_NODE_ARGS passes node options to the server process, e.g. '--cpu-prof --cpu-prof-dir=/tmp/prof'
 * to profile it under load (NODE_OPTIONS does not take --cpu-prof).
 */
export interface BenchOptions {
  quick: boolean;
  scenarios: string[];
  stores: StoreKind[];
  settings: Record<StoreKind, BenchSettings>;
  outDir: string;
  build: boolean;
  command: string;
}

const list = (v: string | undefined): string[] =>
  (v ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
function positive(name: string, v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, got '${v}'`);
  return n;
}

export function parseOptions(argv: string[]): BenchOptions {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      quick: { type: 'boolean', default: false },
      scenario: { type: 'string', multiple: true },
      store: { type: 'string' },
      patients: { type: 'string' },
      sizes: { type: 'string' },
      'pglite-patients': { type: 'string' },
      'pglite-sizes': { type: 'string' },
      concurrency: { type: 'string' },
      'ingest-concurrency': { type: 'string' },
      'ingest-bundles': { type: 'string', default: 'prebuilt' },
      aggregation: { type: 'string', default: 'on' },
      'duration-ms': { type: 'string' },
      'drain-timeout-s': { type: 'string' },
      out: { type: 'string' },
      'no-build': { type: 'boolean', default: false },
    },
  });
  const quick = values.quick ?? false;
  const names = (values.scenario ?? []).flatMap(list);
  for (const s of names) if (!SCENARIOS[s]) throw new Error(`unknown scenario '${s}' (known: ${Object.keys(SCENARIOS).join(', ')})`);
  // Always in the registry's order: later scenarios build on the dataset earlier ones load.
  const scenarios = names.length ? Object.keys(SCENARIOS).filter((s) => names.includes(s)) : Object.keys(SCENARIOS);
  const stores = values.store ? list(values.store) : ['postgres', 'pglite'];
  for (const s of stores) if (s !== 'postgres' && s !== 'pglite') throw new Error(`--store takes postgres and/or pglite, got '${s}'`);
  if (values.aggregation !== 'on' && values.aggregation !== 'off') throw new Error('--aggregation is on or off');
  if (values['ingest-bundles'] !== 'prebuilt' && values['ingest-bundles'] !== 'streamed') throw new Error('--ingest-bundles is prebuilt or streamed');
  const common = {
    quick,
    durationMs: values['duration-ms'] ? positive('duration-ms', values['duration-ms']) : undefined,
    aggregation: values.aggregation === 'on',
    concurrency: values.concurrency ? positive('concurrency', values.concurrency) : 32,
    ingestConcurrency: values['ingest-concurrency'] ? positive('ingest-concurrency', values['ingest-concurrency']) : 4,
    ingestPrebuilt: values['ingest-bundles'] === 'prebuilt',
    drainTimeoutMs: 1000 * (values['drain-timeout-s'] ? positive('drain-timeout-s', values['drain-timeout-s']) : quick ? 90 : 1800),
  };
  const sizes = (v: string | undefined, fallback: number[]) => (v === undefined ? fallback : list(v).map((s) => positive('sizes', s)));
  return {
    quick,
    scenarios,
    stores: stores as StoreKind[],
    settings: {
      postgres: { ...common, patients: values.patients ? positive('patients', values.patients) : quick ? 30 : 500, sizes: sizes(values.sizes, quick ? [100] : [4200]) },
      // The embedded store is one process and one connection: a dataset for its figures, not a scale test.
      pglite: {
        ...common,
        patients: values['pglite-patients'] ? positive('pglite-patients', values['pglite-patients']) : quick ? 5 : 20,
        sizes: sizes(values['pglite-sizes'], []),
      },
    },
    outDir: values.out ?? path.join(ROOT, 'bench/results'),
    build: !values['no-build'],
    command: `npm run bench${argv.length ? ` -- ${argv.join(' ')}` : ''}`,
  };
}

function log(message: string): void {
  process.stderr.write(`bench: ${message}\n`);
}

export async function runStore(store: StoreKind, options: BenchOptions): Promise<StoreRun & { file: string }> {
  const settings = options.settings[store];
  let db: BenchDatabase | undefined;
  if (store === 'postgres') db = await freshDatabase(process.env.DATABASE_URL || DEFAULT_POSTGRES);
  const env: Record<string, string> = { ...(db ? { DATABASE_URL: db.url } : {}), ...(settings.aggregation ? {} : { AGGREGATION_WORKER: 'off' }) };
  const figures: Figure[] = [];
  const seconds: Record<string, number> = {};
  const ctx = {
    store,
    databaseUrl: db?.url,
    settings,
    figures,
    dataset: { patients: 0, resources: 0 },
    idleRssMb: null,
    features: new Map(),
    log: (m: string) => log(`[${store}] ${m}`),
  } as Omit<BenchContext, 'server'> as BenchContext;
  try {
    ctx.server = await startServer({ env });
    // Settle after start before taking the idle figure (schema compiled, pools open).
    await fetch(`${ctx.server.url}/healthz`);
    await new Promise((r) => setTimeout(r, 500));
    ctx.idleRssMb = ctx.server.rssMb();
    for (const name of options.scenarios) {
      if (name === 'memory') continue;
      const t0 = Date.now();
      ctx.log(`${name}…`);
      ctx.server.resetPeak();
      try {
        await SCENARIOS[name](ctx);
      } catch (err) {
        figures.push({ id: `${name}.failed`, scenario: name, metric: 'failed', value: null, unit: '', note: (err as Error).message.slice(0, 300) });
        ctx.log(`${name} failed: ${(err as Error).stack}`);
      }
      memoryFigure(ctx, name, ctx.server.peakRssMb());
      seconds[name] = Math.round((Date.now() - t0) / 1000);
      ctx.log(`${name} done in ${seconds[name]} s`);
    }
    if (options.scenarios.includes('memory')) await SCENARIOS.memory(ctx);
  } finally {
    await ctx.server?.stop();
    await db?.drop();
  }
  const run: StoreRun = {
    store,
    date: new Date().toISOString(),
    commit: gitCommit(),
    command: options.command,
    machine: machineFacts(db?.version),
    settings: { ...settings, scenarios: options.scenarios },
    dataset: ctx.dataset,
    seconds,
    figures,
  };
  return { ...run, file: save(options.outDir, run, options.quick) };
}

export async function runBench(options: BenchOptions): Promise<{ runs: (StoreRun & { file: string })[]; text: string }> {
  if (options.build) execSync('npm run build --silent', { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
  const runs: (StoreRun & { file: string })[] = [];
  for (const store of options.stores) runs.push(await runStore(store, options));
  const text = runs.map((r) => `${header(r)}\n\n${markdown(r.figures)}\n\nSaved ${path.relative(process.cwd(), r.file)}`).join('\n\n');
  return { runs, text };
}

if (require.main === module) {
  const started = Date.now();
  runBench(parseOptions(process.argv.slice(2)))
    .then(({ text }) => process.stdout.write(`\n${text}\n\nTotal ${Math.round((Date.now() - started) / 1000)} s\n`))
    .catch((err: Error) => {
      console.error(`bench: ${err.message}`);
      process.exit(1);
    });
}
