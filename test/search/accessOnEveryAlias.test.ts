import { actingAs } from '../support/accessModel';
import { startTestServer, type Tenant, type TestServer } from '../support/testServer';

/**
 * Issue 12 item 3: the caller's access filter holds on every resource row a search touches — the searched
 * rows, each chain hop, each `_has` level, included rows of every round, totals and counts, history — so a
 * hidden resource never shows, and no count, total or link differs from a server where it does not exist.
 *
 * Trust A and trust B both hold the same patient. A is granted B's GENERAL_HEALTH data about that patient,
 * not its MENTAL_HEALTH data: B's `SHARED` Observation is visible to A, B's `SECRET` Observation (which the
 * shared one is derived from) and B's `DRSECRET` DiagnosticReport (whose result is the shared one) are not.
 */
const NHS = 'https://fhir.nhs.uk/Id/nhs-number';
const ODS = 'https://fhir.nhs.uk/Id/ods-organization-code';
const LABEL = 'http://fhir.patientsknowbest.com/codesystem/privacy-label';
const CODE = 'urn:x';

type Json = Record<string, any>;
let server: TestServer;
let a: Tenant;
let b: Tenant;
/** Aggregated ids. */
let patient: string;
let secret: string;
let shared: string;
let report: string;

async function put(t: Tenant, resource: Json): Promise<void> {
  const res = await t.fetch(`${resource.resourceType}/${resource.id}`, { method: 'PUT', body: JSON.stringify(resource) });
  if (res.status >= 300) throw new Error(`${resource.resourceType}/${resource.id}: ${res.status} ${await res.text()}`);
}
async function agg(t: Tenant, path: string, init?: RequestInit): Promise<Json> {
  const res = await server.aggregated(t, path, init);
  const body = (await res.json()) as Json;
  if (res.status !== 200) throw new Error(`${path}: ${res.status} ${JSON.stringify(body)}`);
  return body;
}
const ids = (bundle: Json, mode?: string) =>
  (bundle.entry ?? [])
    .filter((e: Json) => !mode || e.search?.mode === mode)
    .map((e: Json) => e.resource.id)
    .sort();
const label = (code: string) => ({ security: [{ system: LABEL, code }] });

beforeAll(async () => {
  server = await startTestServer();
  a = await server.provision({ name: 'Trust A' });
  b = await server.provision({ name: 'Trust B' });
  await put(a, { resourceType: 'Organization', id: 'orgA', identifier: [{ system: ODS, value: 'AAA' }], name: 'Trust A' });
  await put(a, {
    resourceType: 'Patient',
    id: 'pa',
    identifier: [{ system: NHS, value: '9449305552' }],
    name: [{ family: 'Smith' }],
    managingOrganization: { reference: 'Organization/orgA' },
  });
  await put(a, {
    resourceType: 'Observation',
    id: 'own',
    meta: label('GENERAL_HEALTH'),
    status: 'final',
    code: { coding: [{ system: CODE, code: 'OWN' }] },
    subject: { reference: 'Patient/pa' },
  });
  await put(b, { resourceType: 'Organization', id: 'orgB', identifier: [{ system: ODS, value: 'BBB' }], name: 'Trust B' });
  await put(b, {
    resourceType: 'Patient',
    id: 'pb',
    identifier: [{ system: NHS, value: '9449305552' }],
    name: [{ family: 'Smith' }],
    managingOrganization: { reference: 'Organization/orgB' },
  });
  await put(b, {
    resourceType: 'Observation',
    id: 'secret',
    meta: label('MENTAL_HEALTH'),
    status: 'final',
    code: { coding: [{ system: CODE, code: 'SECRET' }] },
    subject: { reference: 'Patient/pb' },
  });
  await put(b, {
    resourceType: 'Observation',
    id: 'shared',
    meta: label('GENERAL_HEALTH'),
    status: 'final',
    code: { coding: [{ system: CODE, code: 'SHARED' }] },
    subject: { reference: 'Patient/pb' },
    derivedFrom: [{ reference: 'Observation/secret' }],
  });
  await put(b, {
    resourceType: 'DiagnosticReport',
    id: 'report',
    meta: label('MENTAL_HEALTH'),
    status: 'final',
    code: { coding: [{ system: CODE, code: 'DRSECRET' }] },
    subject: { reference: 'Patient/pb' },
    result: [{ reference: 'Observation/shared' }],
  });
  await server.waitForAggregation();
  // A second version of the hidden Observation, so its history has a superseded side too.
  await put(b, {
    resourceType: 'Observation',
    id: 'secret',
    meta: label('MENTAL_HEALTH'),
    status: 'amended',
    code: { coding: [{ system: CODE, code: 'SECRET' }] },
    subject: { reference: 'Patient/pb' },
  });
  await server.waitForAggregation();

  const one = async (path: string) => {
    const found = ids(await agg(b, path), 'match');
    if (found.length !== 1) throw new Error(`${path}: ${found.length} matches`);
    return found[0] as string;
  };
  patient = await one(`Patient?identifier=${NHS}|9449305552`);
  secret = await one(`Observation?code=${CODE}|SECRET`);
  shared = await one(`Observation?code=${CODE}|SHARED`);
  report = await one(`DiagnosticReport?code=${CODE}|DRSECRET`);
  // A's client acts as its team, to which the patient granted the label.
  a = actingAs(server, a, { teamId: 'team-a' });
  await server.admin('POST', '/admin/consents', { patientId: patient, grantee: 'CareTeam/team-a', label: 'GENERAL_HEALTH' });
}, 120_000);
afterAll(() => server.close());

test('the set-up: A sees the patient and the shared Observation, not the secret one or the report', async () => {
  expect((await server.aggregated(a, `Patient/${patient}`)).status).toBe(200);
  expect((await server.aggregated(a, `Observation/${shared}`)).status).toBe(200);
  expect((await server.aggregated(a, `Observation/${secret}`)).status).toBe(404);
  expect((await server.aggregated(a, `DiagnosticReport/${report}`)).status).toBe(404);
  expect((await agg(b, `Observation/${secret}`)).meta.versionId).toBe('2');
});

test('_has on a hidden Observation counts nothing, as for a code that does not exist', async () => {
  const count = async (code: string) => (await agg(a, `Patient?_has:Observation:subject:code=${CODE}|${code}&_summary=count`)).total;
  expect(await count('SHARED')).toBe(1);
  expect(await count('SECRET')).toBe(0);
  expect(await count('NO-SUCH-CODE')).toBe(0);
  // Sorted and paged one at a time: no entry and no next link, as for the code that does not exist.
  for (const code of ['SECRET', 'NO-SUCH-CODE']) {
    const page = await agg(a, `Patient?_has:Observation:subject:code=${CODE}|${code}&_sort=-_lastUpdated&_count=1`);
    expect(ids(page)).toEqual([]);
    expect(page.link.map((l: Json) => l.relation)).toEqual(['self']);
  }
});

test("_has by the hidden Observation's id matches nothing; _total=accurate agrees", async () => {
  const bundle = await agg(a, `Patient?_has:Observation:subject:_id=${secret}&_total=accurate`);
  expect(ids(bundle)).toEqual([]);
  expect(bundle.total).toBe(0);
  expect(bundle.link.map((l: Json) => l.relation)).toEqual(['self']);
  expect(ids(await agg(a, `Patient?_has:Observation:subject:_id=${shared}`), 'match')).toEqual([patient]);
});

test('two-level _has: a hidden inner level matches nothing though the middle level is visible', async () => {
  const path = (code: string) => `Patient?_has:Observation:subject:_has:DiagnosticReport:result:code=${CODE}|${code}&_total=accurate`;
  const hidden = await agg(a, path('DRSECRET'));
  expect(hidden.total).toBe(0);
  expect(ids(hidden)).toEqual([]);
  // B, who may see the report, finds the patient through the same two levels.
  expect(ids(await agg(b, path('DRSECRET')), 'match')).toEqual([patient]);
});

test('a chain whose hop is hidden matches nothing', async () => {
  const path = `Observation?derived-from:Observation.code=${CODE}|SECRET&_total=accurate`;
  const bundle = await agg(a, path);
  expect(bundle.total).toBe(0);
  expect(ids(bundle)).toEqual([]);
  expect(ids(await agg(b, path), 'match')).toEqual([shared]);
  // The same chain to the hidden resource's patient: the hidden Observation is the searched row.
  expect(ids(await agg(a, `Observation?subject.identifier=${NHS}|9449305552&code=${CODE}|SECRET`))).toEqual([]);
});

test('_include and _revinclude, with :iterate, bring in no hidden resource', async () => {
  const included = await agg(a, `Observation?_id=${shared}&_include=Observation:derived-from&_revinclude=DiagnosticReport:result`);
  expect(ids(included)).toEqual([shared]);
  const iterated = await agg(a, `Patient?_id=${patient}&_revinclude=Observation:subject&_include:iterate=Observation:derived-from&_revinclude:iterate=DiagnosticReport:result`);
  expect(ids(iterated, 'match')).toEqual([patient]);
  expect(ids(iterated, 'include')).toHaveLength(2);
  expect(ids(iterated, 'include')).toContain(shared);
  expect(ids(iterated, 'include')).not.toContain(secret);
  expect(ids(iterated, 'include')).not.toContain(report);
  // B sees all three through the same search.
  expect(
    ids(await agg(b, `Patient?_id=${patient}&_revinclude=Observation:subject&_include:iterate=Observation:derived-from&_revinclude:iterate=DiagnosticReport:result`), 'include'),
  ).toEqual(expect.arrayContaining([shared, secret, report]));
});

test('POST _search applies the filter to _has as GET does', async () => {
  const post = (code: string) =>
    agg(a, 'Patient/_search', {
      method: 'POST',
      headers: { authorization: `Bearer ${a.token}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ [`_has:Observation:subject:code`]: `${CODE}|${code}`, _summary: 'count' }).toString(),
    });
  expect((await post('SHARED')).total).toBe(1);
  expect((await post('SECRET')).total).toBe(0);
});

test('history at instance, type and system level shows no version of a hidden resource', async () => {
  expect((await server.aggregated(a, `Observation/${secret}/_history`)).status).toBe(404);
  const typeLevel = await agg(a, 'Observation/_history');
  const systemLevel = await agg(a, '_history');
  for (const bundle of [typeLevel, systemLevel]) {
    const seen = ids(bundle);
    expect(seen).toContain(shared);
    expect(seen).not.toContain(secret);
    expect(seen).not.toContain(report);
  }
  const bHistory = ids(await agg(b, 'Observation/_history'));
  expect(bHistory.filter((id: string) => id === secret)).toHaveLength(2);
});
