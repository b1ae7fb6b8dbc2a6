import { execFileSync, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { aggregatedTypesText } from '../../src/aggregator/aggregatedTypeList';
import { loadConfig } from '../../src/config';
import { ROOT } from '../support/runCli';
import { putResource, startTestServer, type TestServer } from '../support/testServer';

/**
 * Issue 19 item 6: every server and worker of one database aggregates the same types. The first process on a
 * database records its AGGREGATED_TYPES; a later one with another list refuses to start (naming both lists and
 * how to change them) unless started with AGGREGATED_TYPES_CHANGE=apply, which records the new list and
 * re-aggregates what the change affects. On the embedded store a second server shares the first's connection;
 * on PostgreSQL it has its own pool, and `npm run worker` processes are checked too.
 */
type Json = Record<string, any>;
const NHS = 'https://fhir.nhs.uk/Id/nhs-number';
const onPostgres = /^postgres(ql)?:\/\//.test(process.env.DATABASE_URL ?? '');

/** Servers to close at the end of each test: the first of each test owns (and drops) the database. */
const started: TestServer[] = [];
afterEach(async () => {
  for (const server of started.splice(0).reverse()) await server.close();
});
async function first(env: Record<string, string> = {}): Promise<TestServer> {
  const server = await startTestServer(env);
  started.unshift(server);
  return server;
}
async function another(on: TestServer, env: Record<string, string>): Promise<TestServer> {
  const server = await startTestServer(env, { sharedDatabase: on.database });
  started.push(server);
  return server;
}

test('a list is named by the shortest AGGREGATED_TYPES value that gives it back', () => {
  for (const value of ['', '+Group,-Flag', 'Observation,Patient']) {
    const types = loadConfig({ AGGREGATED_TYPES: value }).aggregatedTypes;
    expect(aggregatedTypesText(types)).toBe(value);
    expect(loadConfig({ AGGREGATED_TYPES: aggregatedTypesText(types) }).aggregatedTypes).toEqual(types);
  }
});

test("AGGREGATED_TYPES_CHANGE is 'apply' or 'refuse' (the default), checked at start with the other settings", () => {
  expect(loadConfig({}).applyAggregatedTypesChange).toBe(false);
  expect(loadConfig({ AGGREGATED_TYPES_CHANGE: 'apply' }).applyAggregatedTypesChange).toBe(true);
  expect(() => loadConfig({ AGGREGATED_TYPES_CHANGE: 'yes' })).toThrow(/AGGREGATED_TYPES_CHANGE='yes' must be one of refuse, apply/);
});

test('a second server with another AGGREGATED_TYPES refuses to start, naming both lists and how to change the database’s', async () => {
  const server = await first();
  const refused = another(server, { AGGREGATED_TYPES: '+Group' });
  await expect(refused).rejects.toThrow(/AGGREGATED_TYPES differs from this database's list: this process has AGGREGATED_TYPES='\+Group', the database AGGREGATED_TYPES=''/);
  await expect(refused).rejects.toThrow(/Group is aggregated here only/);
  await expect(refused).rejects.toThrow(/stop every server and worker, start one with AGGREGATED_TYPES='\+Group' and AGGREGATED_TYPES_CHANGE=apply/);
  // The first server is unaffected.
  expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
});

test('a second server with the same list starts, however the list is written', async () => {
  const server = await first({ AGGREGATED_TYPES: '+Group,-Flag' });
  const whole = loadConfig({ AGGREGATED_TYPES: '+Group,-Flag' }).aggregatedTypes;
  const second = await another(server, { AGGREGATED_TYPES: [...whole].reverse().join(', ') });
  expect((await fetch(`${second.url}/healthz`)).status).toBe(200);
  await expect(another(server, {})).rejects.toThrow(/this process has AGGREGATED_TYPES='', the database AGGREGATED_TYPES='\+Group,-Flag'/);
});

test('AGGREGATED_TYPES_CHANGE=apply records the new list and re-aggregates what the change affects; the old list is then refused', async () => {
  const server = await first();
  const tenant = await server.provision({ defaultSourceOrg: 'Organization/org1' });
  const put = async (resource: Json) => {
    const res = await tenant.fetch(`${resource.resourceType}/${resource.id}`, { method: 'PUT', body: JSON.stringify(resource) });
    if (res.status >= 300) throw new Error(`${resource.resourceType}/${resource.id}: ${res.status} ${await res.text()}`);
  };
  await put({ resourceType: 'Organization', id: 'org1', identifier: [{ system: 'urn:ods', value: 'ORG1' }] });
  await put({ resourceType: 'Patient', id: 'p1', identifier: [{ system: NHS, value: '9000000001' }] });
  await put({ resourceType: 'Flag', id: 'f1', status: 'active', code: { text: 'falls risk' }, subject: { reference: 'Patient/p1' } });
  await put({ resourceType: 'Group', id: 'g1', type: 'person', actual: true, member: [{ entity: { reference: 'Patient/p1' } }] });
  // Refers to a Group: excluded while Group is not aggregated, included once it is.
  await put({ resourceType: 'Observation', id: 'o1', status: 'final', code: { text: 'cohort count' }, subject: { reference: 'Group/g1' } });
  // Refers to an Encounter: included while Encounter is aggregated, excluded once it is not.
  await put({ resourceType: 'Encounter', id: 'e1', status: 'finished', class: { code: 'AMB' }, subject: { reference: 'Patient/p1' } });
  await put({
    resourceType: 'Observation',
    id: 'o2',
    status: 'final',
    code: { text: 'at the visit' },
    subject: { reference: 'Patient/p1' },
    encounter: { reference: 'Encounter/e1' },
  });
  await server.waitForAggregation();
  /** What the aggregated endpoint holds of each type: the `code.text` of each resource, else its count. */
  const held = async (s: TestServer, token: string) => {
    const out: Record<string, string[] | number> = {};
    for (const type of ['Flag', 'Group', 'Encounter', 'Observation']) {
      const bundle = (await (await fetch(`${s.url}/fhir/aggregated/${type}`, { headers: { authorization: `Bearer ${token}` } })).json()) as Json;
      const entries: Json[] = bundle.entry ?? [];
      out[type] = type === 'Observation' ? entries.map((e) => e.resource.code.text).sort() : entries.length;
    }
    return out;
  };
  expect(await held(server, tenant.token)).toEqual({ Flag: 1, Group: 0, Encounter: 1, Observation: ['at the visit'] });

  // Every process stopped (the first server's database stays), then one starts with the new list and the switch.
  await server.app.close();
  const changed = await another(server, { AGGREGATED_TYPES: '+Group,-Flag,-Encounter', AGGREGATED_TYPES_CHANGE: 'apply' });
  await changed.waitForAggregation();
  const token = await changed.token(tenant.clientId, tenant.clientSecret);
  expect(await held(changed, token)).toEqual({ Flag: 0, Group: 1, Encounter: 0, Observation: ['cohort count'] });
  const group = ((await (await fetch(`${changed.url}/fhir/aggregated/Group`, { headers: { authorization: `Bearer ${token}` } })).json()) as Json).entry[0].resource;
  const patient = ((await (await fetch(`${changed.url}/fhir/aggregated/Patient`, { headers: { authorization: `Bearer ${token}` } })).json()) as Json).entry[0].resource;
  expect(group.member[0].entity.reference).toBe(`Patient/${patient.id}`);

  // The new list is the database's now: the old one is refused, the new one (without the switch) starts.
  await expect(another(server, {})).rejects.toThrow(/this process has AGGREGATED_TYPES='', the database AGGREGATED_TYPES='\+Group,-Encounter,-Flag'/);
  const joined = await another(server, { AGGREGATED_TYPES: '-Encounter,+Group,-Flag', AGGREGATION_WORKER: 'off' });
  expect((await fetch(`${joined.url}/healthz`)).status).toBe(200);
}, 120_000);

test('AGGREGATED_TYPES_CHANGE=apply finds what referred to a type now added by the type recorded with the exclusion, whatever its reason says', async () => {
  const server = await first();
  const tenant = await server.provision({ defaultSourceOrg: 'Organization/org1' });
  const put = (resource: { resourceType: string; id: string; [element: string]: unknown }) => putResource(tenant, resource);
  await put({ resourceType: 'Organization', id: 'org1', identifier: [{ system: 'urn:ods', value: 'ORG1' }] });
  await put({ resourceType: 'Patient', id: 'p1', identifier: [{ system: NHS, value: '9000000002' }] });
  await put({ resourceType: 'Group', id: 'g1', type: 'person', actual: true, member: [{ entity: { reference: 'Patient/p1' } }] });
  await put({ resourceType: 'Observation', id: 'o1', status: 'final', code: { text: 'cohort count' }, subject: { reference: 'Group/g1' } });
  await server.waitForAggregation();
  const sql = server.database.db.sql;
  const member = () =>
    sql.query<{ status: string; rule: string | null; target_type: string | null }[]>(
      `SELECT status, rule, target_type FROM agg_member WHERE store = $1 AND type = 'Observation' AND res_id = 'o1'`,
      tenant.endpointId,
    );
  expect(await member()).toEqual([{ status: 'excluded', rule: 'reference-to-unsupported-type', target_type: 'Group' }]);
  // The reason is for people: worded otherwise (another release, another language), the change still finds the member.
  await sql.execute(`UPDATE agg_member SET reason = 'Observation.subject: Group is not part of the aggregated record' WHERE store = $1 AND res_id = 'o1'`, tenant.endpointId);

  await server.app.close();
  const changed = await another(server, { AGGREGATED_TYPES: '+Group', AGGREGATED_TYPES_CHANGE: 'apply' });
  await changed.waitForAggregation();
  const token = await changed.token(tenant.clientId, tenant.clientSecret);
  const bundle = (await (await fetch(`${changed.url}/fhir/aggregated/Observation`, { headers: { authorization: `Bearer ${token}` } })).json()) as Json;
  expect((bundle.entry ?? []).map((e: Json) => e.resource.code.text)).toEqual(['cohort count']);
  // Included, it has no exclusion to be about.
  expect(await member()).toEqual([{ status: 'included', rule: null, target_type: null }]);
}, 120_000);

/**
 * An entry point (`dist/src/server.js` as `npm start` runs it, `src/aggregator/workerMain.ts` as `npm run worker`) as its own
 * process; resolves with its exit code and what it wrote. Stopped with SIGTERM once it logs `started`, when
 * given, and killed after a minute and a half whatever it does (a process that should have refused runs on).
 */
function run(entry: string, env: Record<string, string | undefined>, started?: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const args = entry.endsWith('.ts') ? ['--import', 'tsx', entry] : [entry];
    const child = spawn(process.execPath, args, { cwd: ROOT, env: { ...process.env, NODE_OPTIONS: '', ...env } });
    const deadline = setTimeout(() => child.kill('SIGKILL'), 90_000);
    child.once('exit', () => clearTimeout(deadline));
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (started && stdout.includes(started)) child.kill('SIGTERM');
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}
const WORKER = 'src/aggregator/workerMain.ts';
const SERVER = 'dist/src/server.js';

test('the embedded store keeps its list across `npm start`s: a restart with another list exits with status 1 and the message', async () => {
  // The server as deployed: compiled (npm start builds it when stale).
  execFileSync(process.execPath, ['scripts/build.js', '--if-stale'], { cwd: ROOT, env: { ...process.env, NODE_OPTIONS: '' } });
  const dataDir = await mkdtemp(path.join(tmpdir(), 'tributary-types-'));
  try {
    const env = { DATABASE_URL: undefined, DATA_DIR: dataDir, PORT: '0', HOST: '127.0.0.1', AGGREGATION_THREAD: 'off' };
    const firstStart = await run(SERVER, { ...env, AGGREGATED_TYPES: '-Flag' }, 'Tributary serving on');
    expect(firstStart.stdout).toContain(`recorded AGGREGATED_TYPES='-Flag' as this database's aggregated types`);
    expect(firstStart.code).toBe(0);
    const refused = await run(SERVER, env);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/this process has AGGREGATED_TYPES='', the database AGGREGATED_TYPES='-Flag'.*Flag is aggregated here only/s);
    expect(refused.stdout).not.toContain('Tributary serving on');
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
}, 420_000);

(onPostgres ? test : test.skip)(
  'an `npm run worker` process with another list than the database’s exits with status 1 and the message; with the same list it starts',
  async () => {
    const server = await first({ AGGREGATED_TYPES: '+Group', AGGREGATION_WORKER: 'off' });
    const url = server.database.url as string;
    const refused = await run(WORKER, { DATABASE_URL: url });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/this process has AGGREGATED_TYPES='', the database AGGREGATED_TYPES='\+Group'.*Group is not aggregated here/s);
    expect(refused.stdout).not.toContain('aggregation worker started');
    const same = await run(WORKER, { DATABASE_URL: url, AGGREGATED_TYPES: '+Group' }, 'aggregation worker started');
    expect(same.stdout).toContain('aggregation worker started');
    expect(same.code).toBe(0);
  },
  120_000,
);
