/**
 * Where the server's JavaScript time goes for one ingested transaction Bundle, stage by stage, offline (no HTTP,
 * no database): the body's checks and parse, validation, the write guard, the stored text, index extraction and
 * the index statement's encoding, run as the transaction path runs them on scaled Synthea patients. Each stage's
 * CPU (`process.cpuUsage`, this thread) is summed over the Bundles; the minimum over `rounds` rounds is printed,
 * per resource. A tool for A/B comparisons of the ingest path's code (issue 19 item 1), not a bench figure: it
 * leaves out HTTP, the driver, garbage collection on other threads, and PostgreSQL.
 *
 *   node scripts/run-ts.js bench/ingestStages.ts [patients=40] [rounds=7] [first patient=0]
 */
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { parseFhirJson, stringifyFhirJson, stringifyStoredJson } from '../src/fhir/losslessJson';
import { assertValidResource } from '../src/fhir/validation';
import type { Resource } from '../src/fhir/types';
import { assertJsonShape, decodeUtf8 } from '../src/rest/bodyLimits';
import { indexStatement } from '../src/search/indexer';
import { indexRows } from '../src/search/indexValues';
import { referenceHolders as holders } from '../src/service/bundleProcessor';
import { writeGuard } from '../src/service/writeGuard';
import { stamp as stampVersion } from '../src/store/resourceRepository';
import { bundles } from './lib/dataset';

const patients = Number(process.argv[2] ?? 40);
const rounds = Number(process.argv[3] ?? 7);
const first = Number(process.argv[4] ?? 0);
const STORE = '7c1d6a38-1b51-4b0e-9d7e-2f7a4f0f5a11';

const bodies = [...bundles(first, first + patients)].map((t) => Buffer.from(t, 'utf8'));

/** As the repository stamps a created resource (version 1). */
const stamp = (resource: Resource, id: string, lastUpdated: string): Resource => stampVersion(resource, id, 1, lastUpdated);

const STAGES = ['decode', 'shape', 'parse', 'rewrite', 'validate', 'guard', 'stored', 'index', 'statement', 'response'] as const;
type Stage = (typeof STAGES)[number];

function round(): { cpu: Record<Stage, number>; resources: number } {
  const cpu = Object.fromEntries(STAGES.map((s) => [s, 0])) as Record<Stage, number>;
  let resources = 0;
  let mark = process.cpuUsage();
  const lap = (stage: Stage) => {
    const used = process.cpuUsage(mark);
    cpu[stage] += used.user + used.system;
    mark = process.cpuUsage();
  };
  for (const body of bodies) {
    mark = process.cpuUsage();
    const text = decodeUtf8(body);
    lap('decode');
    const numbersExact: unknown = assertJsonShape(text);
    lap('shape');
    // As the server's body parser (rest/fastifyFhir.ts); typed loosely so that older builds, whose scan answers nothing, compare.
    const bundle = (parseFhirJson as (text: string, options: unknown) => unknown)(text, { numbersExact }) as { entry: { fullUrl?: string; resource: Resource }[] };
    lap('parse');
    const entries = bundle.entry;
    resources += entries.length;
    const mapping = new Map<string, string>();
    const ids = entries.map((e) => {
      const id = randomUUID();
      if (e.fullUrl) mapping.set(e.fullUrl, `${e.resource.resourceType}/${id}`);
      return id;
    });
    for (const e of entries) {
      for (const h of holders(e.resource, [])) {
        const target = mapping.get(h.reference as string);
        if (target !== undefined) h.reference = target;
      }
    }
    lap('rewrite');
    for (const e of entries) assertValidResource('R4', e.resource, e.resource.resourceType);
    lap('validate');
    for (const e of entries) writeGuard(e.resource, STORE);
    lap('guard');
    const now = new Date().toISOString();
    const stamped = entries.map((e, i) => stamp({ ...e.resource, id: ids[i] }, ids[i], now));
    const stored = stringifyStoredJson(stamped);
    if (stored.length === 0) throw new Error('empty');
    lap('stored');
    const items = stamped.map((r, i) => ({ pk: BigInt(i + 1), store: STORE, type: r.resourceType, rows: indexRows(r, 'R4') }));
    lap('index');
    const statement = indexStatement(items, false);
    if (!statement) throw new Error('no statement');
    lap('statement');
    const response = stringifyFhirJson({
      resourceType: 'Bundle',
      type: 'transaction-response',
      entry: stamped.map((r) => ({ response: { status: '201 Created', location: `${r.resourceType}/${r.id}/_history/1`, etag: 'W/"1"', lastModified: now } })),
    });
    if (!response) throw new Error('no response');
    lap('response');
  }
  return { cpu, resources };
}

/** `INGEST_STAGES_PROFILE=file.cpuprofile`: a CPU profile of the measured rounds only (not of the compiles of the first). */
async function profiled<T>(fn: () => T): Promise<T> {
  const file = process.env.INGEST_STAGES_PROFILE;
  if (!file) return fn();
  const { Session } = await import('node:inspector/promises');
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 100 });
  await session.post('Profiler.start');
  const result = fn();
  const { profile } = await session.post('Profiler.stop');
  writeFileSync(file, JSON.stringify(profile));
  return result;
}

round(); // compiles validators and index plans
const best = Object.fromEntries(STAGES.map((s) => [s, Infinity])) as Record<Stage, number>;
let resources = 0;
void profiled(() => {
  for (let r = 0; r < rounds; r++) {
    const result = round();
    resources = result.resources;
    for (const s of STAGES) best[s] = Math.min(best[s], result.cpu[s]);
  }
}).then(() => {
  const total = STAGES.reduce((n, s) => n + best[s], 0);
  console.log(`${patients} patients from ${first}, ${resources} resources, ${bodies.reduce((n, b) => n + b.length, 0)} bytes; min of ${rounds} rounds, µs CPU per resource:`);
  for (const s of STAGES) console.log(`  ${s.padEnd(10)} ${(best[s] / resources).toFixed(2).padStart(7)}`);
  console.log(`  ${'total'.padEnd(10)} ${(total / resources).toFixed(2).padStart(7)}`);
});
