import { runAdminCli } from '../support/runCli';
import { startTestServer, type Tenant, type TestServer } from '../support/testServer';

/**
 * Issue 15 item 7: the aggregation report of an endpoint, for its owner (REST `$aggregation-report`, GraphQL
 * `aggregationReport`) and the admin (`adminAggregationReport`, `npm run admin -- aggregation report`): counts
 * per type and rule, and root causes that account for every exclusion, kept current as data arrives.
 *
 * The feed: an Encounter provider Organization without identifier (as in STU3 Synthea) takes its Encounters
 * and their Observations out in cascade; one Observation names a Practitioner that is not there; one refers
 * to its patient by identifier only.
 */
const NHS = 'https://fhir.nhs.uk/Id/nhs-number';
const ODS = 'https://fhir.nhs.uk/Id/ods-organization-code';

type Json = Record<string, any>;
let server: TestServer;
let t: Tenant;
let other: Tenant;

async function put(tenant: Tenant, resource: Json): Promise<void> {
  const res = await tenant.fetch(`${resource.resourceType}/${resource.id}`, { method: 'PUT', body: JSON.stringify(resource) });
  if (res.status >= 300) throw new Error(`${resource.resourceType}/${resource.id}: ${res.status} ${await res.text()}`);
}
const observation = (id: string, extra: Json = {}) => ({ resourceType: 'Observation', id, status: 'final', code: { text: id }, subject: { reference: 'Patient/p' }, ...extra });

/** The Parameters answer as plain objects: its top-level values and its repeated parameters with their parts. */
function read(parameters: Json): { values: Record<string, unknown>; groups: Record<string, Json[]> } {
  const values: Record<string, unknown> = {};
  const groups: Record<string, Json[]> = {};
  const valueOf = (p: Json) => p.valueInteger ?? p.valueString ?? p.valueCode ?? p.valueInstant ?? p.valueReference?.reference;
  for (const p of parameters.parameter) {
    if (!p.part) values[p.name] = valueOf(p);
    else {
      const group: Json = {};
      for (const part of p.part) {
        const v = part.part ? Object.fromEntries(part.part.map((x: Json) => [x.name, valueOf(x)])) : valueOf(part);
        if (['example', 'cascade', 'target'].includes(part.name)) group[part.name] = [...(group[part.name] ?? []), v];
        else group[part.name] = v;
      }
      groups[p.name] = [...(groups[p.name] ?? []), group];
    }
  }
  return { values, groups };
}

async function restReport(tenant: Tenant, endpointBase = tenant.baseUrl): Promise<{ status: number; body: Json }> {
  const res = await tenant.fetch(`${endpointBase}/$aggregation-report`);
  return { status: res.status, body: (await res.json()) as Json };
}

async function graphql(token: string, query: string, variables: Json = {}): Promise<Json> {
  const res = await fetch(`${server.url}/graphql`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ query, variables }),
  });
  return (await res.json()) as Json;
}
const REPORT_QUERY = `query Report($ep: ID!) { aggregationReport(endpoint: $ep) {
  endpoint totals { included excluded pending parked deleted }
  types { type included excluded }
  exclusions { type rule count examples targets { type count } }
  rootCauses { type rule count excludedThrough summary examples cascade { type count } } } }`;

beforeAll(async () => {
  server = await startTestServer();
  t = await server.provision({ name: 'Reporting trust', defaultSourceOrg: 'Organization/src' });
  other = await server.provision({ name: 'Another customer' });
  await put(t, { resourceType: 'Organization', id: 'src', identifier: [{ system: ODS, value: 'SRC' }], name: 'Source' });
  await put(t, { resourceType: 'Organization', id: 'prov', name: 'Provider without identifier' });
  await put(t, { resourceType: 'Patient', id: 'p', identifier: [{ system: NHS, value: '9000000010' }] });
  for (const e of ['e1', 'e2']) {
    await put(t, {
      resourceType: 'Encounter',
      id: e,
      status: 'finished',
      class: { code: 'AMB' },
      subject: { reference: 'Patient/p' },
      serviceProvider: { reference: 'Organization/prov' },
    });
  }
  await put(t, observation('o1', { encounter: { reference: 'Encounter/e1' } }));
  await put(t, observation('o2', { encounter: { reference: 'Encounter/e1' } }));
  await put(t, observation('o3', { encounter: { reference: 'Encounter/e2' } }));
  await put(t, observation('o4'));
  await put(t, observation('o5', { performer: [{ reference: 'Practitioner/ghost' }] }));
  await put(t, observation('o6', { subject: { identifier: { system: NHS, value: '9000000010' } } }));
  await server.waitForAggregation();
}, 120_000);
afterAll(() => server.close());

test('REST: counts per type and rule, and root causes that account for every exclusion', async () => {
  const { status, body } = await restReport(t);
  expect(status).toBe(200);
  expect(body.resourceType).toBe('Parameters');
  const { values, groups } = read(body);
  expect(values).toMatchObject({ endpoint: t.endpointId, included: 3, excluded: 8, pending: 0, parked: 0, deleted: 0 });
  const types = Object.fromEntries(groups.type.map((g) => [g.type, [g.included, g.excluded]]));
  expect(types).toEqual({ Encounter: [0, 2], Observation: [1, 5], Organization: [1, 1], Patient: [1, 0] });

  const exclusions = groups.exclusion.map((e) => [e.type, e.rule, e.count]);
  expect(exclusions).toEqual(
    expect.arrayContaining([
      ['Observation', 'target-not-aggregated', 4],
      ['Encounter', 'target-not-aggregated', 2],
      ['Organization', 'identifier-missing', 1],
      ['Observation', 'identifier-only-reference', 1],
    ]),
  );
  expect(groups.exclusion.find((e) => e.rule === 'identifier-missing')?.example).toEqual(['Organization/prov']);
  // Exclusions about references name the types referred to (agg_member.target_type), largest first.
  const waiting = groups.exclusion.find((e) => e.type === 'Observation' && e.rule === 'target-not-aggregated') as Json;
  expect(waiting.description).toBe('4 Observations refer to a resource that is not in the aggregated record (Encounter: 3, Practitioner: 1)');
  expect(waiting.target).toEqual([
    { type: 'Encounter', count: 3 },
    { type: 'Practitioner', count: 1 },
  ]);
  expect(groups.exclusion.find((e) => e.type === 'Encounter')?.description).toBe('2 Encounters refer to a resource that is not in the aggregated record (Organization)');
  expect(groups.exclusion.find((e) => e.rule === 'identifier-missing')?.target).toBeUndefined();

  const causes = groups.rootCause;
  expect(causes[0]).toMatchObject({
    type: 'Organization',
    rule: 'identifier-missing',
    count: 1,
    excludedThrough: 5,
    summary: '1 Organization has no identifier → 5 resources excluded through references to it',
    example: ['Organization/prov'],
    cascade: [
      { type: 'Observation', count: 3 },
      { type: 'Encounter', count: 2 },
    ],
  });
  expect(causes.find((c) => c.rule === 'missing')).toMatchObject({ type: 'Practitioner', count: 1, excludedThrough: 1, example: ['Practitioner/ghost'] });
  expect(causes.find((c) => c.rule === 'identifier-only-reference')).toMatchObject({ type: 'Observation', count: 1, excludedThrough: 0, example: ['Observation/o6'] });
  // Every exclusion has one root: a resource excluded for its own reason, or one it waits for.
  const own = causes.filter((c) => c.rule !== 'missing').reduce((n, c) => n + c.count, 0);
  const through = causes.reduce((n, c) => n + c.excludedThrough, 0);
  expect(own + through).toBe(values.excluded);
});

test('the report follows the data: once the provider has an identifier its Encounters and Observations come in', async () => {
  await put(t, { resourceType: 'Organization', id: 'prov', identifier: [{ system: ODS, value: 'PROV' }], name: 'Provider' });
  await server.waitForAggregation();
  const { values, groups } = read((await restReport(t)).body);
  expect(values).toMatchObject({ included: 9, excluded: 2 });
  expect(groups.rootCause.map((c) => [c.type, c.rule])).toEqual(
    expect.arrayContaining([
      ['Practitioner', 'missing'],
      ['Observation', 'identifier-only-reference'],
    ]),
  );
  expect(groups.rootCause).toHaveLength(2);
});

test('GraphQL: the owner asks aggregationReport, the admin adminAggregationReport; the same numbers', async () => {
  const mine = await graphql(t.token, REPORT_QUERY, { ep: t.endpointId });
  expect(mine.errors).toBeUndefined();
  const report = mine.data.aggregationReport;
  expect(report.totals).toEqual({ included: 9, excluded: 2, pending: 0, parked: 0, deleted: 0 });
  expect(report.exclusions).toEqual(
    expect.arrayContaining([
      { type: 'Observation', rule: 'target-not-aggregated', count: 1, examples: ['Observation/o5'], targets: [{ type: 'Practitioner', count: 1 }] },
      { type: 'Observation', rule: 'identifier-only-reference', count: 1, examples: ['Observation/o6'], targets: [] },
    ]),
  );
  expect(report.rootCauses.find((c: Json) => c.rule === 'missing')).toMatchObject({ type: 'Practitioner', count: 1, excludedThrough: 1, examples: ['Practitioner/ghost'] });
  const admin = await graphql(
    server.adminToken,
    `
      query ($ep: ID!) {
        adminAggregationReport(endpoint: $ep) {
          totals {
            included
            excluded
          }
          rootCauses {
            summary
          }
        }
      }
    `,
    { ep: t.endpointId },
  );
  expect(admin.data.adminAggregationReport.totals).toEqual({ included: 9, excluded: 2 });
  expect(admin.data.adminAggregationReport.rootCauses.map((c: Json) => c.summary)).toEqual(report.rootCauses.map((c: Json) => c.summary));
});

test("another customer's endpoint has no report for it: 404 on REST, the same error as an unknown endpoint on GraphQL", async () => {
  const theirs = await restReport(other, t.baseUrl);
  const nowhere = await restReport(other, `${server.url}/fhir/customer/ep-nowhere`);
  expect(theirs.status).toBe(404);
  expect(nowhere.status).toBe(404);
  expect(theirs.body.issue[0].diagnostics.replace(t.endpointId, 'X')).toBe(nowhere.body.issue[0].diagnostics.replace('ep-nowhere', 'X'));
  const gql = await graphql(other.token, REPORT_QUERY, { ep: t.endpointId });
  const ghost = await graphql(other.token, REPORT_QUERY, { ep: 'ep-nowhere' });
  expect(gql.data).toBeNull();
  expect(JSON.stringify(gql.errors).replaceAll(t.endpointId, 'X')).toBe(JSON.stringify(ghost.errors).replaceAll('ep-nowhere', 'X'));
});

test('a token limited to some types gets the report of those types only', async () => {
  const client = await server.admin<{ client_id: string; client_secret: string }>('POST', '/admin/clients', {
    customerId: t.customerId,
    family: 'fhir',
    scopes: 'system/Observation.rs',
  });
  const token = await server.token(client.client_id, client.client_secret);
  const res = await fetch(`${t.baseUrl}/$aggregation-report`, { headers: { authorization: `Bearer ${token}` } });
  const { values, groups } = read((await res.json()) as Json);
  expect(groups.type.map((g) => g.type)).toEqual(['Observation']);
  expect(values).toMatchObject({ included: 4, excluded: 2 });
  // The missing Practitioner is not named to a token that may not read Practitioners.
  const missing = groups.rootCause.find((c) => c.rule === 'missing') as Json;
  expect(missing).toMatchObject({ type: 'Practitioner', excludedThrough: 1 });
  expect(missing.count).toBeUndefined();
  expect(missing.example).toBeUndefined();
});

test('npm run admin -- aggregation report prints a table whose first lines name the causes', async () => {
  const text = await runAdminCli(server, 'aggregation', 'report', '--endpoint', t.endpointId);
  expect(text.code).toBe(0);
  expect(text.stdout).toContain(`Aggregation report for endpoint ${t.endpointId}`);
  expect(text.stdout).toContain('11 resources: 9 included, 2 excluded');
  expect(text.stdout).toContain('1 Practitioner is referred to but not on this endpoint → 1 resource excluded through references to it');
  expect(text.stdout).toMatch(/Observation +4 +2 +0 +0 +0/);
  // The exclusions table names the type each reference rule's resources refer to, as the REST and GraphQL reports do.
  expect(text.stdout).toMatch(/Observation +target-not-aggregated +1 +1 Practitioner +Observation\/o5/);
  const json = await runAdminCli(server, 'aggregation', 'report', '--endpoint', t.endpointId, '--format', 'json');
  expect(JSON.parse(json.stdout).totals).toMatchObject({ included: 9, excluded: 2 });
  const unknown = await runAdminCli(server, 'aggregation', 'report', '--endpoint', 'ep-nowhere');
  expect(unknown.code).toBe(1);
  expect(unknown.stderr).toContain('ep-nowhere');
}, 120_000);
