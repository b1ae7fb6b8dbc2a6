import { SearchService } from '../../src/search/searchService';
import type { Sql } from '../../src/store/resourceRepository';
import { startTestServer, type Tenant, type TestServer } from '../support/testServer';

/**
 * A sorted search driven by a selective condition reads only the matching rows of `resource` (issue 16
 * item 11: the soak's `Observation?subject=…&_sort=-date` grew slower as other patients' Observations were
 * written). The data go in through the real HTTP server; the page query the search service runs is then
 * explained (EXPLAIN ANALYZE, on the same database, as freshly written — no ANALYZE, like a table that has
 * just grown) and the rows its plan reads from `resource` are counted.
 */
let server: TestServer;
let t: Tenant;
const BUSY = 120;
const QUIET_DATES = ['2024-01-05T00:00:00Z', '2024-03-01T00:00:00Z', '2023-12-24T00:00:00Z'];

const observation = (id: string, patient: string, date: string) => ({
  request: { method: 'PUT', url: `Observation/${id}` },
  resource: { resourceType: 'Observation', id, status: 'final', code: { text: 'pulse' }, subject: { reference: `Patient/${patient}` }, effectiveDateTime: date },
});

beforeAll(async () => {
  server = await startTestServer({ AGGREGATION_WORKER: 'off' });
  t = await server.provision();
  const entry = [
    ...['busy', 'quiet'].map((id) => ({ request: { method: 'PUT', url: `Patient/${id}` }, resource: { resourceType: 'Patient', id } })),
    ...Array.from({ length: BUSY }, (_, i) => observation(`b${i}`, 'busy', `2024-02-${String(1 + (i % 28)).padStart(2, '0')}T00:00:00Z`)),
    ...QUIET_DATES.map((d, i) => observation(`q${i}`, 'quiet', d)),
  ];
  const res = await t.fetch('', { method: 'POST', body: JSON.stringify({ resourceType: 'Bundle', type: 'transaction', entry }) });
  if (res.status !== 200) throw new Error(`load → ${res.status} ${await res.text()}`);
}, 120_000);

afterAll(async () => {
  await server?.close();
});

interface PlanNode {
  'Relation Name'?: string;
  'Actual Rows': number;
  'Actual Loops': number;
  'Rows Removed by Filter'?: number;
  'Rows Removed by Index Recheck'?: number;
  Plans?: PlanNode[];
}

/** Rows the plan's scans of `resource` produced or threw away, over all their loops. */
function resourceRowsRead(node: PlanNode): number {
  const own =
    node['Relation Name'] === 'resource' ? (node['Actual Rows'] + (node['Rows Removed by Filter'] ?? 0) + (node['Rows Removed by Index Recheck'] ?? 0)) * node['Actual Loops'] : 0;
  return own + (node.Plans ?? []).reduce((n, p) => n + resourceRowsRead(p), 0);
}

test('Observation?subject=…&_sort=-date reads the patient’s rows of resource, not every Observation', async () => {
  // The same rows as through HTTP, newest first.
  const bundle = (await (await t.fetch('Observation?subject=Patient/quiet&_sort=-date&_count=2')).json()) as {
    entry: { resource: { id: string } }[];
    link: { relation: string }[];
  };
  expect(bundle.entry.map((e) => e.resource.id)).toEqual(['q1', 'q0']);
  expect(bundle.link.map((l) => l.relation)).toContain('next');

  const statements: { text: string; values: unknown[] }[] = [];
  const sql = server.database.db.sql;
  const recording: Sql = {
    query: <T>(text: string, ...values: unknown[]) => {
      statements.push({ text, values });
      return sql.query<T>(text, ...values);
    },
    execute: (text: string, ...values: unknown[]) => sql.execute(text, ...values),
  } as Sql;
  const search = new SearchService(sql);
  const found = await search.search(
    {
      store: t.endpointId,
      fhirVersion: 'R4',
      resourceType: 'Observation',
      params: [
        ['subject', 'Patient/quiet'],
        ['_sort', '-date'],
      ],
      baseUrl: 'http://x',
    },
    recording as never,
  );
  expect(found.entry?.map((e) => e.resource?.id)).toEqual(['q1', 'q0', 'q2']);

  const page = statements.find((s) => /ORDER BY/.test(s.text));
  expect(page).toBeDefined();
  const [row] = await sql.query<{ 'QUERY PLAN': { Plan: PlanNode }[] }[]>(`EXPLAIN (ANALYZE, FORMAT JSON) ${page!.text}`, ...page!.values);
  const read = resourceRowsRead(row['QUERY PLAN'][0].Plan);
  expect(read).toBeGreaterThanOrEqual(QUIET_DATES.length);
  // Before: every live Observation (123) was read, and probed against the patient's lookup, for 3 matches.
  expect(read).toBeLessThan(2 * QUIET_DATES.length);
});

test('the sorted search driven by its lookup finds only its own store’s rows', async () => {
  // Another customer's endpoint with the same patient id: the lookup's key (store, type, parameter) keeps it out.
  const other = await server.provision({ name: 'Other customer' });
  const res = await other.fetch('', {
    method: 'POST',
    body: JSON.stringify({
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [{ request: { method: 'PUT', url: 'Patient/quiet' }, resource: { resourceType: 'Patient', id: 'quiet' } }, observation('elsewhere', 'quiet', '2025-01-01T00:00:00Z')],
    }),
  });
  expect(res.status).toBe(200);
  const ids = async (tenant: Tenant) =>
    ((await (await tenant.fetch('Observation?subject=Patient/quiet&_sort=-date&_count=10')).json()) as { entry: { resource: { id: string } }[] }).entry.map((e) => e.resource.id);
  expect(await ids(t)).toEqual(['q1', 'q0', 'q2']);
  expect(await ids(other)).toEqual(['elsewhere']);
});
