import type { Bundle, Resource } from '../../src/fhir/types';
import { ColumnLiterals, SEARCH_TABLES } from '../../src/search/indexer';
import { indexRows, type IndexRows } from '../../src/search/indexValues';
import { startTestServer, type Tenant, type TestServer } from '../support/testServer';

/**
 * Index rows travel to the database as array literals, one per column (search/indexer.ts): values holding the
 * literal's own syntax (quotes, backslashes, braces, commas, the word NULL, blanks) must be stored exactly as
 * extracted, and a transaction Bundle's creates stay all or nothing with their index rows.
 */
let server: TestServer;
let tenant: Tenant;

beforeAll(async () => {
  server = await startTestServer();
  tenant = await server.provision();
}, 120_000);
afterAll(() => server?.close());

const AWKWARD = ['O"Brien', 'back\\slash', '{braced}', 'a,b', 'NULL', ' padded ', '"', '\\', '\\"', 'ünïcødé ✓', ''];

test('an array literal column reads back, through PostgreSQL, as the values it was built from', async () => {
  const columns = new ColumnLiterals(3);
  AWKWARD.forEach((v, i) => columns.row(String(i), String(-i), ['param', v]));
  columns.row('99', '-99', ['param', null]);
  const [keys, pks, values] = columns.literals();
  const rows = await server.database.db.sql.query<{ key: string; pk: string; value: string | null }[]>(
    `SELECT key::text, pk::text, value FROM unnest($1::bigint[], $2::bigint[], $3::text[]) AS x(key, pk, value)`,
    keys,
    pks,
    values,
  );
  expect(rows.map((r) => r.value)).toEqual([...AWKWARD, null]);
  expect(rows.map((r) => r.pk)).toEqual([...AWKWARD.map((_, i) => String(-i)), '-99']);
});

/** An object as JSON with its keys sorted (jsonb orders keys its own way). */
const canonical = (o: Record<string, unknown>) => JSON.stringify(Object.fromEntries(Object.entries(o).sort(([a], [b]) => a.localeCompare(b))));

/** Every index row of a resource as text tuples, sorted (what the tables hold, keys left out). */
async function storedRows(type: string, id: string): Promise<string[]> {
  const out: string[] = [];
  for (const table of SEARCH_TABLES) {
    const rows = await server.database.db.sql.query<{ r: Record<string, unknown> }[]>(
      `SELECT to_jsonb(t) - 'key' - 'resource_pk' AS r FROM ${table} t JOIN resource r ON r.pk = t.resource_pk WHERE r.store = $1 AND r.type = $2 AND r.id = $3`,
      tenant.endpointId,
      type,
      id,
    );
    for (const { r } of rows) out.push(`${table} ${canonical(r)}`);
  }
  return out.sort();
}

test('awkward strings are stored and searched as sent, through a transaction Bundle', async () => {
  const patient: Resource = {
    resourceType: 'Patient',
    name: AWKWARD.filter((v) => v.trim() !== '').map((family) => ({ family, given: [`${family} given`] })),
    identifier: AWKWARD.filter((v) => v.trim() !== '').map((value) => ({ system: 'urn:test:awkward', value })),
    telecom: [{ system: 'email', value: 'a"b\\c@example.org' }],
  };
  const bundle: Bundle = {
    resourceType: 'Bundle',
    type: 'transaction',
    entry: [{ fullUrl: 'urn:uuid:8f1d0a4e-0000-4000-8000-000000000001', resource: patient, request: { method: 'POST', url: 'Patient' } }],
  };
  const response = await tenant.fetch('', { method: 'POST', body: JSON.stringify(bundle) });
  expect(response.status).toBe(200);
  const [entry] = ((await response.json()) as Bundle).entry ?? [];
  const id = /^Patient\/([^/]+)\//.exec(entry.response?.location ?? '')?.[1] as string;
  const stored = (await (await tenant.fetch(`Patient/${id}`)).json()) as Resource;

  // The rows the extraction gives for the stored resource, in the same shape as storedRows reads them.
  const expected: string[] = [];
  const columns: Record<keyof IndexRows, string[]> = {
    string: ['value', 'exact'],
    token: ['system', 'code', 'text'],
    reference: ['target_type', 'target_id', 'url'],
    date: ['low', 'high'],
    number: ['value'],
    quantity: ['value', 'system', 'code'],
    uri: ['value'],
    composite: ['system1', 'code1', 'system2', 'code2', 'number2', 'low2', 'high2'],
  };
  const rows = indexRows(stored, 'R4');
  for (const kind of Object.keys(columns) as (keyof IndexRows)[]) {
    for (const [, ...values] of rows[kind] as [string, ...(string | null)[]][]) {
      if (kind === 'date' || kind === 'number' || kind === 'quantity' || kind === 'composite') continue; // typed columns print differently
      const table = `search_${kind}`;
      expected.push(`${table} ${canonical(Object.fromEntries(columns[kind].map((c, i) => [c, values[i]])))}`);
    }
  }
  const actual = (await storedRows('Patient', id)).filter((r) => /^search_(string|token|reference|uri) /.test(r));
  expect(actual).toEqual(expected.sort());

  for (const value of AWKWARD.filter((v) => v.trim() !== '')) {
    const found = (await (await tenant.fetch(`Patient?identifier=${encodeURIComponent(`urn:test:awkward|${value.replace(/[\\,|$]/g, '\\$&')}`)}`)).json()) as Bundle;
    expect({ value, ids: found.entry?.map((e) => e.resource?.id) }).toEqual({ value, ids: [id] });
  }
  const byName = (await (await tenant.fetch(`Patient?family:exact=${encodeURIComponent('O"Brien')}`)).json()) as Bundle;
  expect(byName.entry?.map((e) => e.resource?.id)).toEqual([id]);
});

test('a transaction Bundle that fails after its creates were written leaves neither resource nor any index row', async () => {
  const marker = `rollback-${Date.now()}`;
  const bundle: Bundle = {
    resourceType: 'Bundle',
    type: 'transaction',
    entry: [
      { resource: { resourceType: 'Patient', identifier: [{ system: 'urn:test:rollback', value: marker }] }, request: { method: 'POST', url: 'Patient' } },
      // Runs after the creates (PUT after POST) and fails: If-Match on a resource that does not exist is a 412.
      { resource: { resourceType: 'Patient', id: `missing-${marker}` }, request: { method: 'PUT', url: `Patient/missing-${marker}`, ifMatch: 'W/"3"' } },
    ],
  };
  expect((await tenant.fetch('', { method: 'POST', body: JSON.stringify(bundle) })).status).toBe(412);
  const found = (await (await tenant.fetch(`Patient?identifier=urn:test:rollback|${marker}`)).json()) as Bundle;
  expect(found.entry ?? []).toEqual([]);
  const [{ n }] = await server.database.db.sql.query<{ n: string }[]>(`SELECT count(*)::text AS n FROM search_token WHERE code = $1`, marker);
  expect(n).toBe('0');
});
