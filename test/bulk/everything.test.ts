import { startTestServer, type Tenant, type TestServer } from '../support/testServer';

/**
 * `Patient/$everything` on the aggregated endpoint (issue 19 item 5): the patient's compartment as the
 * caller may see it, paged with `next` links, narrowed by `_type` and `_since`.
 */
const NHS = 'https://fhir.nhs.uk/Id/nhs-number';
const ODS = 'https://fhir.nhs.uk/Id/ods-organization-code';
const LABEL = 'http://fhir.patientsknowbest.com/codesystem/privacy-label';

type Json = Record<string, any>;
let server: TestServer;
let a: Tenant;
let b: Tenant;
let stranger: Tenant;
let patientId: string;

async function put(t: Tenant, resource: Json): Promise<void> {
  const res = await t.fetch(`${resource.resourceType}/${resource.id}`, { method: 'PUT', body: JSON.stringify(resource) });
  if (res.status >= 300) throw new Error(`${resource.resourceType}/${resource.id}: ${res.status} ${await res.text()}`);
}
async function agg(t: Tenant, path: string): Promise<Json> {
  const res = await server.aggregated(t, path);
  return { status: res.status, ...((await res.json()) as Json) };
}
const keys = (bundle: Json) =>
  (bundle.entry ?? []).map((e: Json) => `${e.resource.resourceType}:${e.resource.code?.text ?? e.resource.medicationCodeableConcept?.text ?? ''}`).sort();

beforeAll(async () => {
  server = await startTestServer();
  a = await server.provision({ name: 'Trust A' });
  b = await server.provision({ name: 'Trust B' });
  stranger = await server.provision({ name: 'Trust C' });
  await put(a, { resourceType: 'Organization', id: 'orgA', identifier: [{ system: ODS, value: 'AAA' }], name: 'Trust A' });
  await put(a, {
    resourceType: 'Patient',
    id: 'pa',
    identifier: [{ system: NHS, value: '9449305552' }],
    name: [{ family: 'Smith' }],
    managingOrganization: { reference: 'Organization/orgA' },
  });
  await put(a, {
    resourceType: 'Patient',
    id: 'other',
    identifier: [{ system: NHS, value: '9000000009' }],
    name: [{ family: 'Jones' }],
    managingOrganization: { reference: 'Organization/orgA' },
  });
  for (const [id, subject, text] of [
    ['o1', 'pa', 'weight'],
    ['o2', 'pa', 'height'],
    ['o3', 'other', 'pulse'],
  ]) {
    await put(a, {
      resourceType: 'Observation',
      id,
      status: 'final',
      code: { text },
      subject: { reference: `Patient/${subject}` },
      meta: { security: [{ system: LABEL, code: 'GENERAL_HEALTH' }] },
    });
  }
  await put(b, { resourceType: 'Organization', id: 'orgB', identifier: [{ system: ODS, value: 'BBB' }], name: 'Trust B' });
  await put(b, {
    resourceType: 'Patient',
    id: 'pb',
    identifier: [{ system: NHS, value: '9449305552' }],
    name: [{ family: 'Smith' }],
    managingOrganization: { reference: 'Organization/orgB' },
  });
  await put(b, {
    resourceType: 'MedicationStatement',
    id: 'msB',
    status: 'active',
    medicationCodeableConcept: { text: 'sertraline' },
    subject: { reference: 'Patient/pb' },
    meta: { security: [{ system: LABEL, code: 'MENTAL_HEALTH' }] },
  });
  await server.waitForAggregation();
  const found = await agg(a, `Patient?identifier=${NHS}|9449305552`);
  patientId = found.entry[0].resource.id;
}, 120_000);
afterAll(() => server.close());

test("the patient's compartment as each caller may see it, and nothing of another patient", async () => {
  const fromA = await agg(a, `Patient/${patientId}/$everything`);
  expect(fromA.status).toBe(200);
  expect(fromA.type).toBe('searchset');
  expect(keys(fromA)).toEqual(['Observation:height', 'Observation:weight', 'Patient:']);
  expect(keys(await agg(b, `Patient/${patientId}/$everything`))).toEqual(['MedicationStatement:sertraline', 'Patient:']);
});

test('paged with next links that walk the whole compartment once', async () => {
  let page = await agg(a, `Patient/${patientId}/$everything?_count=1`);
  const seen: string[] = [];
  for (let i = 0; i < 10; i++) {
    expect(page.entry.length).toBeLessThanOrEqual(1);
    seen.push(...keys(page));
    const next = page.link.find((l: Json) => l.relation === 'next');
    if (!next) break;
    expect(next.url).toContain(`/fhir/aggregated/Patient/${patientId}/$everything?`);
    page = await agg(a, next.url.slice(next.url.indexOf('/fhir/aggregated/') + '/fhir/aggregated/'.length));
  }
  expect(seen.sort()).toEqual(['Observation:height', 'Observation:weight', 'Patient:']);
});

test('_type and _since narrow it', async () => {
  expect(keys(await agg(a, `Patient/${patientId}/$everything?_type=Observation`))).toEqual(['Observation:height', 'Observation:weight']);
  const future = new Date(Date.now() + 3_600_000).toISOString();
  expect(keys(await agg(a, `Patient/${patientId}/$everything?_since=${encodeURIComponent(future)}`))).toEqual([]);
});

test('a caller who cannot see the patient gets 404; bad parameters are a 400 naming them', async () => {
  const hidden = await agg(stranger, `Patient/${patientId}/$everything`);
  expect(hidden.status).toBe(404);
  expect(hidden.resourceType).toBe('OperationOutcome');
  const bad = await agg(a, `Patient/${patientId}/$everything?_since=yesterday`);
  expect(bad.status).toBe(400);
  expect(JSON.stringify(bad)).toContain('_since');
});

test('/metadata lists $everything, $export and $graphql, each of which answers where it is listed', async () => {
  const statement = await agg(a, 'metadata');
  expect(statement.instantiates).toEqual(['http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data']);
  const rest = statement.rest[0];
  expect(rest.operation.map((o: Json) => o.name).sort()).toEqual(['export', 'graphql']);
  const patient = rest.resource.find((r: Json) => r.type === 'Patient');
  expect(patient.operation).toEqual([
    { name: 'everything', definition: 'http://hl7.org/fhir/OperationDefinition/Patient-everything' },
    { name: 'export', definition: 'http://hl7.org/fhir/uv/bulkdata/OperationDefinition/patient-export' },
  ]);
  // Every other type lists none.
  expect(rest.resource.filter((r: Json) => r.type !== 'Patient' && r.operation)).toEqual([]);

  expect((await agg(a, `Patient/${patientId}/$everything`)).status).toBe(200);
  expect((await agg(a, `$graphql?query=${encodeURIComponent('{ PatientList { id } }')}`)).status).toBe(200);
  for (const path of ['$export', 'Patient/$export']) {
    const res = await server.aggregated(a, path, { headers: { prefer: 'respond-async', accept: 'application/fhir+json' } });
    expect([path, res.status]).toEqual([path, 202]);
    expect(res.headers.get('content-location')).toContain('/$export-status/');
  }
});
