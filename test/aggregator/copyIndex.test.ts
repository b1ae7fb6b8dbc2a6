import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import type { Resource } from '../../src/fhir/types';
import { indexStatement, SEARCH_TABLES } from '../../src/search/indexer';
import { indexRows, sharedParameters } from '../../src/search/indexValues';
import { ROOT } from '../support/runCli';
import { startTestServer, type Tenant, type TestServer } from '../support/testServer';

/**
 * An aggregated copy of an R4 resource shares its upstream's index rows but for its references and meta, copied
 * in SQL rather than re-extracted (search/indexer.ts): its rows must be exactly those a full extraction of the
 * copy gives, and the aggregated endpoint's searches must find the copies by shared and by own parameters.
 */
// Beside the checkout, or beside the folder of worktrees (as bench/lib/dataset.ts looks for it).
const SYNTHEA =
  [path.resolve(ROOT, '../shared/data/synthea-r4'), path.resolve(ROOT, '../../shared/data/synthea-r4')].find((dir) => existsSync(dir)) ??
  path.resolve(ROOT, '../shared/data/synthea-r4');

let server: TestServer;
let tenant: Tenant;

beforeAll(async () => {
  server = await startTestServer();
  tenant = await server.provision({ defaultSourceOrg: 'Organization/default' });
  const org = { resourceType: 'Organization', id: 'default', identifier: [{ system: 'https://fhir.nhs.uk/Id/ods-organization-code', value: 'COPYIDX' }] };
  expect((await tenant.fetch('Organization/default', { method: 'PUT', body: JSON.stringify(org) })).status).toBe(201);
  // The two smallest bundles (about 300 resources each): every type Synthea brings, in a test that stays short.
  const files = readdirSync(SYNTHEA)
    .filter((f) => f.endsWith('.json'))
    .map((f) => ({ f, size: statSync(path.join(SYNTHEA, f)).size }))
    .sort((a, b) => a.size - b.size || a.f.localeCompare(b.f))
    .slice(0, 2)
    .map((x) => x.f);
  for (const file of files) {
    expect((await tenant.fetch('', { method: 'POST', body: readFileSync(path.join(SYNTHEA, file), 'utf8') })).status).toBe(200);
  }
  await server.waitForAggregation();
}, 180_000);
afterAll(() => server?.close());

/** Every index row of `pk` as text (key, columns), sorted: one string per row. */
async function rowsOf(pk: string): Promise<string[]> {
  const out: string[] = [];
  for (const table of SEARCH_TABLES) {
    const rows = await server.database.db.sql.query<{ r: string }[]>(`SELECT (t.*)::text AS r FROM (SELECT * FROM ${table} WHERE resource_pk = $1::bigint) t`, pk);
    for (const { r } of rows) out.push(`${table} ${r.replace(/^\(-?\d+,-?\d+,/, (m) => m.replace(/,-?\d+,$/, ','))}`);
  }
  return out.sort();
}

test('every copied resource has exactly the index rows a full extraction of the copy gives', async () => {
  const copies = await server.database.db.sql.query<{ pk: string; content: Resource }[]>(
    `SELECT pk::text AS pk, content FROM resource WHERE store = 'aggregated' AND NOT deleted AND type NOT IN ('Patient', 'Organization', 'Practitioner', 'Location', 'Medication')`,
  );
  // Copies of every type Synthea brings that the aggregate copies one-to-one (Observation, Encounter, Claim, …).
  expect(new Set(copies.map((c) => c.content.resourceType)).size).toBeGreaterThan(5);
  let shared = 0;
  for (const { pk, content } of copies) {
    // The full extraction, written under a pk no resource has, then compared row for row (keys and values).
    const probe = `-${pk}`;
    const statement = indexStatement([{ pk: BigInt(probe), store: 'aggregated', type: content.resourceType, rows: indexRows(content, 'R4') }], false);
    if (statement) await server.database.db.sql.execute(statement.sql, ...statement.params);
    const [actual, expected] = [await rowsOf(pk), await rowsOf(probe)];
    for (const table of SEARCH_TABLES) await server.database.db.sql.execute(`DELETE FROM ${table} WHERE resource_pk = $1::bigint`, probe);
    expect({ type: content.resourceType, id: content.id, rows: actual }).toEqual({ type: content.resourceType, id: content.id, rows: expected });
    shared += actual.filter((r) => !r.startsWith('search_reference')).length;
  }
  expect(shared).toBeGreaterThan(copies.length);
}, 180_000);

test('the aggregated endpoint finds copies by a shared parameter and by a rewritten reference', async () => {
  const [observation] = await server.database.db.sql.query<{ id: string; code: string; subject: string }[]>(
    `SELECT id, content->'code'->'coding'->0->>'code' AS code, content->'subject'->>'reference' AS subject FROM resource
      WHERE store = 'aggregated' AND type = 'Observation' AND NOT deleted ORDER BY pk LIMIT 1`,
  );
  const bundle = (await (await server.aggregated(tenant, `Observation?code=${observation.code}&subject=${observation.subject}&_count=500`)).json()) as {
    entry?: { resource: { id: string } }[];
  };
  expect(bundle.entry?.map((e) => e.resource.id)).toContain(observation.id);
});

test("a copy reads its upstream's index rows by probing them, never a whole index table (a fresh, growing table without statistics)", async () => {
  const sql = server.database.db.sql;
  if (!server.database.url) return; // PGlite: the same planner, but the table would be filled in-process for minutes
  // A bulk load's tables: many rows under other resources, and no ANALYZE since they arrived.
  for (const table of ['search_token', 'search_date']) {
    const columns = table === 'search_token' ? 'key, resource_pk, system, code' : 'key, resource_pk, low, high';
    const values = table === 'search_token' ? `g % 40, -g / 9 - 10, 'http://loinc.org', 'c' || (g % 997)` : `g % 40, -g / 3 - 10, now(), now()`;
    await sql.execute(`INSERT INTO ${table} (${columns}) SELECT ${values} FROM generate_series(1, 200000) AS g`);
  }
  // A batch of copies as the aggregator writes them: each copy's shared rows from its upstream's.
  const pairs = await sql.query<{ type: string; store: string; upstream: string; copy: string }[]>(
    `SELECT m.type, m.store, u.pk::text AS upstream, c.pk::text AS copy FROM agg_member m
       JOIN resource u ON u.store = m.store AND u.type = m.type AND u.id = m.res_id
       JOIN resource c ON c.store = 'aggregated' AND c.type = m.type AND c.id = m.agg_id
      WHERE m.type = 'Observation' AND m.status = 'included' LIMIT 100`,
  );
  expect(pairs.length).toBeGreaterThan(50);
  const statement = indexStatement(
    pairs.map((p) => ({
      pk: BigInt(`-${p.copy}`),
      store: 'aggregated',
      type: p.type,
      copyFrom: { pk: BigInt(p.upstream), store: p.store, params: sharedParameters(p.type) },
    })),
    false,
  );
  const plan = (await sql.query<Record<string, string>[]>(`EXPLAIN ${statement!.sql}`, ...statement!.params)).map((r) => Object.values(r)[0]).join('\n');
  expect(plan).toContain('search_token_pk_idx');
  expect(plan).not.toMatch(/Seq Scan on search_(token|date)/);
  for (const table of ['search_token', 'search_date']) await sql.execute(`DELETE FROM ${table} WHERE resource_pk < -9`);
});

test('copies of a type read its upstream rows only from the index tables that type shares rows in', async () => {
  // An Observation shares token, date, quantity and string rows with its upstream, and has no number or uri parameter
  // to share: probing those tables once per copy would find nothing (and cost an index probe each).
  const statement = indexStatement(
    [{ pk: -1n, store: 'aggregated', type: 'Observation', copyFrom: { pk: 1n, store: 'upstream', params: sharedParameters('Observation') } }],
    false,
  );
  const copied = [...statement!.sql.matchAll(/c_(search_\w+) AS \(INSERT/g)].map((m) => m[1]);
  expect(copied).toEqual(expect.arrayContaining(['search_token', 'search_date', 'search_quantity']));
  expect(copied).not.toContain('search_number');
  expect(copied).not.toContain('search_uri');
  expect(copied).not.toContain('search_reference');
});
