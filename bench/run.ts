import { execSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { ROOT, startServer } from './lib/server';
import { type BenchContext, type Figure, SCENARIOS } from './scenarios';

/**
 * `npm run bench [-- --quick] [--scenario NAME]… [--store postgres|pglite] [--patients N] [--sizes a,b]`
 * Builds, starts the server as its own process on a fresh database, runs the scenarios with load from
 * separate processes, prints a markdown table and saves it with the raw figures under bench/results/.
 */
export interface BenchOptions {
  quick: boolean;
  scenarios: string[];
  store: 'postgres' | 'pglite';
  patients: number;
  sizes: number[];
  outDir: string;
  build: boolean;
  durationMs?: number;
  /** `off`: no aggregation worker in the server (isolates search and read figures from the drain). */
  aggregation: boolean;
}

export function parseOptions(argv: string[]): BenchOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      scenario: { type: 'string', multiple: true },
      store: { type: 'string', default: 'postgres' },
      patients: { type: 'string' },
      sizes: { type: 'string' },
      out: { type: 'string' },
      'no-build': { type: 'boolean', default: false },
      'duration-ms': { type: 'string' },
      aggregation: { type: 'string', default: 'on' },
    },
  });
  const scenarios = values.scenario?.length ? values.scenario : Object.keys(SCENARIOS);
  for (const s of scenarios) if (!SCENARIOS[s]) throw new Error(`unknown scenario '${s}' (known: ${Object.keys(SCENARIOS).join(', ')})`);
  if (values.store !== 'postgres' && values.store !== 'pglite') throw new Error('--store is postgres or pglite');
  const quick = values.quick ?? false;
  return {
    quick,
    scenarios,
    store: values.store,
    patients: values.patients ? Number(values.patients) : quick ? 100 : 500,
    sizes: values.sizes ? values.sizes.split(',').map(Number) : quick ? [] : [4_200],
    outDir: values.out ?? path.join(ROOT, 'bench/results'),
    build: !values['no-build'],
    durationMs: values['duration-ms'] ? Number(values['duration-ms']) : undefined,
    aggregation: values.aggregation !== 'off',
  };
}

async function freshDatabase(adminUrl: string): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `tributary_bench_${Date.now()}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const again = new pg.Client({ connectionString: adminUrl });
      await again.connect();
      await again.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await again.end();
    },
  };
}

export function markdown(figures: Figure[]): string {
  const cell = (v: unknown) => (v === undefined || v === null || (typeof v === 'number' && Number.isNaN(v)) ? '' : String(v));
  const lines = ['| scenario | metric | value | unit | floor | ratio | target | note |', '|---|---|---:|---|---:|---:|---|---|'];
  for (const f of figures) lines.push(`| ${f.scenario} | ${f.metric} | ${cell(f.value)} | ${f.unit} | ${cell(f.floor)} | ${cell(f.ratio)} | ${cell(f.target)} | ${cell(f.note)} |`);
  return lines.join('\n');
}

export async function runBench(options: BenchOptions): Promise<{ figures: Figure[]; file: string; table: string }> {
  if (options.build) execSync('npm run build --silent', { cwd: ROOT, stdio: 'inherit' });
  const adminUrl = process.env.DATABASE_URL || 'postgresql://postgres@127.0.0.1:5432/postgres';
  const db = await freshDatabase(adminUrl);
  const server = await startServer({ ...(options.store === 'postgres' ? { DATABASE_URL: db.url } : {}), ...(options.aggregation ? {} : { AGGREGATION_WORKER: 'off' }) });
  const ctx: BenchContext = { server, databaseUrl: db.url, quick: options.quick, patients: options.patients, searchSizes: options.sizes, figures: [], loadedPatients: 0, durationMs: options.durationMs };
  let pgVersion = '';
  try {
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    pgVersion = (await c.query('SHOW server_version')).rows[0].server_version;
    await c.end();
    for (const name of options.scenarios) {
      const t0 = Date.now();
      process.stderr.write(`bench: ${name}…\n`);
      try {
        await SCENARIOS[name](ctx);
      } catch (err) {
        ctx.figures.push({ scenario: name, metric: 'failed', value: null, unit: '', note: (err as Error).message.slice(0, 200) });
      }
      process.stderr.write(`bench: ${name} done in ${((Date.now() - t0) / 1000).toFixed(0)} s\n`);
    }
  } finally {
    await server.stop();
    await db.drop();
  }
  let commit = 'unknown';
  try {
    commit = execSync('git rev-parse --short HEAD', { cwd: ROOT }).toString().trim();
  } catch {
    // not a git checkout
  }
  const machine = { cpu: os.cpus()[0]?.model, cores: os.cpus().length, memoryGb: Math.round(os.totalmem() / 2 ** 30), node: process.version, platform: `${os.platform()} ${os.release()}`, postgres: pgVersion };
  const date = new Date().toISOString();
  const table = markdown(ctx.figures);
  mkdirSync(options.outDir, { recursive: true });
  const stem = `${date.replace(/[:.]/g, '-')}-${options.store}${options.quick ? '-quick' : ''}`;
  const file = path.join(options.outDir, `${stem}.json`);
  const header = `Store: ${options.store}; aggregation worker: ${options.aggregation ? 'on' : 'off'}; patients: ${ctx.loadedPatients}; commit ${commit}; ${date}; ${machine.cores} × ${machine.cpu}, ${machine.memoryGb} GB; PostgreSQL ${pgVersion}; ${machine.node}`;
  writeFileSync(file, JSON.stringify({ date, commit, machine, options, dataset: { patients: ctx.loadedPatients }, figures: ctx.figures }, null, 2));
  writeFileSync(path.join(options.outDir, `${stem}.md`), `${header}\n\n${table}\n`);
  return { figures: ctx.figures, file, table: `${header}\n\n${table}` };
}

if (require.main === module) {
  runBench(parseOptions(process.argv.slice(2)))
    .then(({ table, file }) => {
      process.stdout.write(`${table}\n\nSaved ${path.relative(ROOT, file)}\n`);
    })
    .catch((err) => {
      console.error(err);
      process.exit(1);
    });
}
