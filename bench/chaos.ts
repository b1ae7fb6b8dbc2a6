import { randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { patientBundle } from './lib/dataset';
import { startPrivatePostgres, type PrivatePostgres } from './lib/privatePostgres';
import { ROOT, startServer, type RunningServer, type Tenant } from './lib/server';

/**
 * `npm run chaos [-- --rounds N]`: issue 16 items 7 and 8, against the built server on a PostgreSQL
 * instance of its own (initdb on a free port; never the shared one).
 *
 * Crash rounds: loaders post Synthea transaction Bundles at full speed (each with an Idempotency-Key, resent
 * after a lost answer) while the harness SIGKILLs the server's whole process group at random moments and
 * starts it again. After the last kill the Bundles then in flight are abandoned (unacknowledged). Checks:
 * every acknowledged write is present at its acknowledged version; an unacknowledged Bundle is all there or
 * not at all; no resource is stored twice; the outbox drains; and the aggregate (resources per type, groups,
 * members, dangling references) equals that of a clean load of the same Bundles into a fresh database.
 *
 * Outage: loading on, PostgreSQL is stopped for 20 s: every answer must be a 200 or a 503 with Retry-After
 * (no other 5xx, no crash), /healthz stays 200, /readyz 503; after PostgreSQL is back the same process serves
 * and aggregates again and every acknowledged Bundle is there.
 */
const args = process.argv.slice(2);
const option = (name: string, fallback: number) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : fallback);
const ROUNDS = option('--rounds', 5);
const LOADERS = option('--loaders', 4);
const OUTAGE_MS = option('--outage-seconds', 20) * 1000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const between = (lo: number, hi: number) => lo + Math.random() * (hi - lo);

interface Loader {
  /** Bundle index → the locations its transaction-response acknowledged. */
  acked: Map<number, string[]>;
  /** Bundles whose answer never came (abandoned after the last kill). */
  unacked: Set<number>;
  /** Answers by status, and how many 503s came without Retry-After. */
  statuses: Record<string, number>;
  without503RetryAfter: number;
  lostAnswers: number;
  rejected: { index: number; status: number; body: string }[];
}

function newLoader(): Loader {
  return { acked: new Map(), unacked: new Set(), statuses: {}, without503RetryAfter: 0, lostAnswers: 0, rejected: [] };
}

/** Loads Bundles from `next()` until `stop()`; an unanswered Bundle is resent with its key unless `abandon()`. */
async function load(server: RunningServer, tenantRef: { t: Tenant }, into: Loader, next: () => number | undefined, abandon: () => boolean): Promise<void> {
  for (let index = next(); index !== undefined; index = next()) {
    const key = randomUUID();
    const body = patientBundle(index);
    for (;;) {
      let res: Response;
      try {
        res = await fetch(tenantRef.t.base, {
          method: 'POST',
          headers: { authorization: `Bearer ${tenantRef.t.token}`, 'content-type': 'application/fhir+json', 'idempotency-key': key },
          body,
        });
      } catch {
        into.lostAnswers++;
        if (abandon()) {
          into.unacked.add(index);
          break;
        }
        await sleep(300);
        continue;
      }
      into.statuses[res.status] = (into.statuses[res.status] ?? 0) + 1;
      const text = await res.text();
      if (res.status === 200) {
        const bundle = JSON.parse(text) as { entry: { response: { location: string } }[] };
        into.acked.set(
          index,
          bundle.entry.map((e) => e.response.location),
        );
        break;
      }
      if (res.status === 401) {
        tenantRef.t = await server.remint(tenantRef.t);
        continue;
      }
      if (res.status === 503 || res.status === 429) {
        const after = Number(res.headers.get('retry-after'));
        if (res.status === 503 && !(after > 0)) into.without503RetryAfter++;
        await sleep(1000 * Math.min(after || 1, 5));
        continue;
      }
      into.rejected.push({ index, status: res.status, body: text.slice(0, 300) });
      break;
    }
  }
}

/** A patient's Bundle: its Patient identifier and how many of its entries refer to the patient. */
function bundleShape(index: number): { identifier: { system: string; value: string }; entries: number; referring: number } {
  const bundle = JSON.parse(patientBundle(index)) as { entry: { fullUrl: string; resource: { resourceType: string; identifier?: { system: string; value: string }[] } }[] };
  const p = bundle.entry.find((e) => e.resource.resourceType === 'Patient');
  if (!p?.resource.identifier?.[0]) throw new Error(`bundle ${index} has no Patient with an identifier`);
  const ref = `"${p.fullUrl}"`;
  return { identifier: p.resource.identifier[0], entries: bundle.entry.length, referring: bundle.entry.filter((e) => JSON.stringify(e.resource).includes(ref)).length };
}

async function query<T>(url: string, sql: string, ...values: unknown[]): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(sql, values)).rows as T[];
  } finally {
    await client.end();
  }
}

async function createDatabase(pgUrl: string, name: string): Promise<string> {
  await query(pgUrl, `CREATE DATABASE ${name}`);
  const url = new URL(pgUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

/** Waits until nothing is left to aggregate; returns the parked items (failed repeatedly) left behind. */
async function drained(url: string, timeoutMs = 900_000): Promise<{ drained: boolean; waiting: number; parked: number; seconds: number }> {
  const t0 = Date.now();
  for (;;) {
    const [row] = await query<{ waiting: number; parked: number }>(
      url,
      `SELECT count(*) FILTER (WHERE NOT parked)::int AS waiting, count(*) FILTER (WHERE parked)::int AS parked FROM agg_outbox`,
    );
    if (row.waiting === 0 || Date.now() - t0 > timeoutMs) return { drained: row.waiting === 0, ...row, seconds: Math.round((Date.now() - t0) / 1000) };
    await sleep(1000);
  }
}

/** What a load leaves in the aggregate: resources per type, groups, members by status, dangling references. */
async function aggregateSummary(url: string): Promise<Record<string, unknown>> {
  const aggregated = await query<{ type: string; n: number }>(
    url,
    `SELECT type, count(*)::int AS n FROM resource WHERE store = 'aggregated' AND NOT deleted GROUP BY type ORDER BY type`,
  );
  const groups = await query<{ type: string; n: number }>(url, `SELECT type, count(*)::int AS n FROM agg_group WHERE replaced_by IS NULL GROUP BY type ORDER BY type`);
  const members = await query<{ status: string; n: number }>(url, `SELECT status, count(*)::int AS n FROM agg_member GROUP BY status ORDER BY status`);
  const upstream = await query<{ type: string; n: number }>(
    url,
    `SELECT type, count(*)::int AS n FROM resource WHERE store <> 'aggregated' AND NOT deleted GROUP BY type ORDER BY type`,
  );
  const [dangling] = await query<{ n: number }>(
    url,
    `WITH refs AS (
       SELECT jsonb_path_query(r.content, 'strict $.**.reference') #>> '{}' AS ref FROM resource r WHERE r.store = 'aggregated' AND NOT r.deleted
     )
     SELECT count(*)::int AS n FROM refs
      WHERE ref ~ '^[A-Z][A-Za-z]+/[^/]+$'
        AND NOT EXISTS (SELECT 1 FROM resource t WHERE t.store = 'aggregated' AND t.type = split_part(ref, '/', 1) AND t.id = split_part(ref, '/', 2) AND NOT t.deleted)`,
  );
  const [duplicatePatients] = await query<{ n: number }>(
    url,
    `SELECT count(*)::int AS n FROM (SELECT i FROM resource, jsonb_array_elements(content->'identifier') i
      WHERE store = 'aggregated' AND type = 'Patient' AND NOT deleted GROUP BY i HAVING count(DISTINCT id) > 1) d`,
  );
  const table = (rows: { type?: string; status?: string; n: number }[]) => Object.fromEntries(rows.map((r) => [r.type ?? r.status, r.n]));
  return {
    upstream: table(upstream),
    aggregated: table(aggregated),
    groups: table(groups),
    members: table(members),
    danglingReferences: dangling.n,
    patientIdentifiersInTwoGroups: duplicatePatients.n,
  };
}

async function crashRounds(pgInstance: PrivatePostgres) {
  const url = await createDatabase(pgInstance.url, 'chaos');
  const server = await startServer({ env: { DATABASE_URL: url }, detached: true });
  const tenant = { t: await server.tenant('chaos') };
  const endpoint = tenant.t.endpointId;
  // What the endpoint holds before the load (the tenant's source Organization): stored, but by no Bundle.
  const [{ n: storedBeforeLoad }] = await query<{ n: number }>(url, `SELECT count(*)::int AS n FROM resource WHERE store = $1 AND NOT deleted`, endpoint);
  const loader = newLoader();
  let next = 0;
  let stopping = false;
  const t0 = Date.now();
  const loaders = Array.from({ length: LOADERS }, () =>
    load(
      server,
      tenant,
      loader,
      () => (stopping ? undefined : next++),
      () => stopping,
    ),
  );
  const kills: { atSeconds: number; ackedBefore: number; restartSeconds: number }[] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    await sleep(between(4000, 12000));
    const ackedBefore = loader.acked.size;
    await server.kill('SIGKILL');
    const killedAt = Date.now();
    if (round === ROUNDS) stopping = true;
    console.error(`round ${round}: SIGKILL at ${((killedAt - t0) / 1000).toFixed(1)} s, ${ackedBefore} Bundles acknowledged`);
    if (round === ROUNDS) await Promise.all(loaders);
    await server.restart({});
    kills.push({ atSeconds: Number(((killedAt - t0) / 1000).toFixed(1)), ackedBefore, restartSeconds: Number(((Date.now() - killedAt) / 1000).toFixed(1)) });
  }
  const loadSeconds = (Date.now() - t0) / 1000;
  const outbox = await drained(url);

  // Every acknowledged write, at its acknowledged version.
  const rows = await query<{ type: string; id: string; version_id: number; deleted: boolean }>(
    url,
    `SELECT type, id, version_id, deleted FROM resource WHERE store = $1`,
    endpoint,
  );
  const stored = new Map(rows.map((r) => [`${r.type}/${r.id}`, r]));
  let missing = 0;
  let wrongVersion = 0;
  let ackedResources = 0;
  for (const locations of loader.acked.values()) {
    for (const location of locations) {
      ackedResources++;
      const [type, id, , version] = location.split('/');
      const row = stored.get(`${type}/${id}`);
      if (!row || row.deleted) missing++;
      else if (Number(row.version_id) !== Number(version)) wrongVersion++;
    }
  }
  // Unacknowledged Bundles: each all there or not at all.
  let halfPresent = 0;
  let unackedPresent = 0;
  let unackedResources = 0;
  const present: number[] = [];
  for (const index of loader.unacked) {
    const shape = bundleShape(index);
    const patients = await query<{ id: string }>(
      url,
      `SELECT id FROM resource WHERE store = $1 AND type = 'Patient' AND NOT deleted AND content->'identifier' @> $2::jsonb`,
      endpoint,
      JSON.stringify([shape.identifier]),
    );
    if (patients.length === 0) continue;
    const [{ n }] = await query<{ n: number }>(
      url,
      `SELECT count(*)::int AS n FROM resource WHERE store = $1 AND NOT deleted AND content::text LIKE $2`,
      endpoint,
      `%"Patient/${patients[0].id}"%`,
    );
    if (patients.length !== 1 || n !== shape.referring) halfPresent++;
    unackedPresent++;
    unackedResources += shape.entries;
    present.push(index);
  }
  const expectedResources = storedBeforeLoad + ackedResources + unackedResources;
  const storedResources = rows.filter((r) => !r.deleted).length;
  const chaos = await aggregateSummary(url);
  await server.stop();

  // The same Bundles, loaded once into a fresh database with nothing killed.
  const cleanUrl = await createDatabase(pgInstance.url, 'clean');
  const clean = await startServer({ env: { DATABASE_URL: cleanUrl } });
  const cleanTenant = { t: await clean.tenant('chaos') };
  const indices = [...loader.acked.keys(), ...present].sort((a, b) => a - b);
  const cleanLoader = newLoader();
  let k = 0;
  await Promise.all(
    Array.from({ length: LOADERS }, () =>
      load(
        clean,
        cleanTenant,
        cleanLoader,
        () => indices[k++],
        () => false,
      ),
    ),
  );
  await drained(cleanUrl);
  const reference = await aggregateSummary(cleanUrl);
  await clean.stop();

  const same = JSON.stringify(chaos) === JSON.stringify(reference);
  return {
    url,
    result: {
      rounds: ROUNDS,
      loadSeconds: Number(loadSeconds.toFixed(1)),
      kills,
      bundlesAcknowledged: loader.acked.size,
      bundlesUnacknowledged: loader.unacked.size,
      unacknowledgedPresent: unackedPresent,
      answersLost: loader.lostAnswers,
      statuses: loader.statuses,
      rejected: loader.rejected,
      acknowledgedResources: ackedResources,
      lostWrites: missing,
      wrongVersion,
      halfPresent,
      storedBeforeLoad,
      storedResources,
      expectedResources,
      duplicates: storedResources - expectedResources,
      outbox,
      aggregate: chaos,
      cleanAggregate: reference,
      aggregateEqualsCleanLoad: same,
    },
    ok:
      missing === 0 &&
      wrongVersion === 0 &&
      halfPresent === 0 &&
      storedResources === expectedResources &&
      outbox.drained &&
      outbox.parked === 0 &&
      same &&
      (chaos.danglingReferences as number) === 0 &&
      (chaos.patientIdentifiersInTwoGroups as number) === 0 &&
      loader.rejected.length === 0,
  };
}

async function outageRun(pgInstance: PrivatePostgres, url: string, firstIndex: number) {
  const server = await startServer({ env: { DATABASE_URL: url }, detached: true });
  const tenant = { t: await server.tenant('outage') };
  const loader = newLoader();
  let next = firstIndex;
  let stopping = false;
  const loaders = Array.from({ length: LOADERS }, () =>
    load(
      server,
      tenant,
      loader,
      () => (stopping ? undefined : next++),
      // Resent until answered, unless the server died (a failure the run reports, not a hang).
      () => server.exitCode !== null,
    ),
  );
  await sleep(5000);
  const probes: Record<string, Record<string, number>> = { healthz: {}, readyz: {}, graphql: {}, token: {} };
  const probe = async (name: string, run: () => Promise<Response>) => {
    const status = await run()
      .then((r) => r.status)
      .catch(() => 0);
    probes[name][status] = (probes[name][status] ?? 0) + 1;
  };
  const stoppedAt = Date.now();
  pgInstance.stop('fast');
  console.error(`outage: PostgreSQL stopped for ${OUTAGE_MS / 1000} s`);
  while (Date.now() - stoppedAt < OUTAGE_MS) {
    await probe('healthz', () => fetch(`${server.url}/healthz`));
    await probe('readyz', () => fetch(`${server.url}/readyz`));
    await probe('graphql', () =>
      fetch(`${server.url}/graphql`, {
        method: 'POST',
        headers: { authorization: `Bearer ${tenant.t.token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ query: '{ PatientList(_count: 1) { id } }' }),
      }),
    );
    await probe('token', () =>
      fetch(`${server.url}/oauth2/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'client_credentials', client_id: tenant.t.clientId, client_secret: tenant.t.clientSecret }).toString(),
      }),
    );
    await sleep(1000);
  }
  pgInstance.start();
  const restartedAt = Date.now();
  const ackedAtRestart = loader.acked.size;
  // Load on until the same process has acknowledged more Bundles, and a little longer.
  while (loader.acked.size <= ackedAtRestart && Date.now() - restartedAt < 120_000) await sleep(500);
  const recoverySeconds = (Date.now() - restartedAt) / 1000;
  await sleep(10_000);
  stopping = true;
  await Promise.all(loaders);
  const outbox = await drained(url);
  const rows = await query<{ type: string; id: string; version_id: number }>(
    url,
    `SELECT type, id, version_id FROM resource WHERE store = $1 AND NOT deleted`,
    tenant.t.endpointId,
  );
  const stored = new Map(rows.map((r) => [`${r.type}/${r.id}`, Number(r.version_id)]));
  let lost = 0;
  for (const locations of loader.acked.values()) for (const l of locations) if (stored.get(l.split('/').slice(0, 2).join('/')) !== Number(l.split('/')[3])) lost++;
  const other5xx = Object.entries(loader.statuses)
    .filter(([s]) => Number(s) >= 500 && Number(s) !== 503)
    .reduce((n, [, c]) => n + c, 0);
  const alive = server.exitCode === null;
  await server.stop();
  const probe5xx = Object.values(probes).flatMap((p) => Object.entries(p).filter(([s]) => Number(s) >= 500 && Number(s) !== 503));
  return {
    result: {
      outageSeconds: OUTAGE_MS / 1000,
      statuses: loader.statuses,
      other5xx,
      without503RetryAfter: loader.without503RetryAfter,
      answersLost: loader.lostAnswers,
      probes,
      serverAliveThroughout: alive,
      recoverySeconds: Number(recoverySeconds.toFixed(1)),
      bundlesAcknowledged: loader.acked.size,
      lostWrites: lost,
      rejected: loader.rejected,
      outbox,
    },
    ok:
      other5xx === 0 &&
      probe5xx.length === 0 &&
      loader.without503RetryAfter === 0 &&
      alive &&
      lost === 0 &&
      outbox.drained &&
      loader.rejected.length === 0 &&
      (probes.healthz['200'] ?? 0) > 0 &&
      !probes.healthz['503'] &&
      (probes.readyz['503'] ?? 0) > 0,
  };
}

async function main(): Promise<void> {
  const started = new Date();
  const pgInstance = await startPrivatePostgres();
  try {
    console.error(`chaos: private PostgreSQL on port ${pgInstance.port}; ${ROUNDS} SIGKILL rounds, ${LOADERS} loaders`);
    const crash = await crashRounds(pgInstance);
    console.error(`crash rounds: ${crash.ok ? 'pass' : 'FAIL'}`);
    const outage = await outageRun(pgInstance, crash.url, 10_000);
    console.error(`outage: ${outage.ok ? 'pass' : 'FAIL'}`);
    const report = { started: started.toISOString(), crash: crash.result, outage: outage.result, pass: crash.ok && outage.ok };
    const dir = path.join(ROOT, 'bench/results');
    mkdirSync(dir, { recursive: true });
    const file = path.join(dir, `${started.toISOString().replace(/[:.]/g, '-')}-postgres-chaos.json`);
    writeFileSync(file, JSON.stringify(report, null, 2));
    const c = crash.result;
    const o = outage.result;
    const lines = [
      `# Chaos — ${started.toISOString()}: ${report.pass ? 'pass' : 'FAIL'}`,
      '',
      `Crash rounds: ${c.rounds} SIGKILLs of the server's process group over ${c.loadSeconds} s of loading; ${c.bundlesAcknowledged} Bundles (${c.acknowledgedResources} resources) acknowledged, ${c.bundlesUnacknowledged} unacknowledged (${c.unacknowledgedPresent} of them found whole), ${c.answersLost} answers lost in the kills.`,
      `Lost writes ${c.lostWrites}, wrong versions ${c.wrongVersion}, half-present Bundles ${c.halfPresent}, duplicates ${c.duplicates} (${c.storedResources} stored / ${c.expectedResources} expected, ${c.storedBeforeLoad} of them written before the load); outbox drained ${c.outbox.drained} (parked ${c.outbox.parked}); dangling references ${(c.aggregate as { danglingReferences: number }).danglingReferences}; aggregate equals a clean load: ${c.aggregateEqualsCleanLoad}.`,
      '',
      `Outage: PostgreSQL stopped ${o.outageSeconds} s under load: answers ${JSON.stringify(o.statuses)}, 5xx other than 503: ${o.other5xx}, 503 without Retry-After: ${o.without503RetryAfter}; probes ${JSON.stringify(o.probes)}; server alive: ${o.serverAliveThroughout}; first acknowledged write ${o.recoverySeconds} s after PostgreSQL was back; lost writes ${o.lostWrites}; outbox drained ${o.outbox.drained}.`,
    ];
    writeFileSync(file.replace(/\.json$/, '.md'), `${lines.join('\n')}\n`);
    console.log(lines.join('\n'));
    if (!report.pass) process.exitCode = 1;
  } finally {
    pgInstance.destroy();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
