import { createOutboxHook } from '../../src/aggregator/outbox';
import type { Resource } from '../../src/fhir/types';
import { createSearchIndexer } from '../../src/search/indexer';
import { ResourceRepository } from '../../src/store/resourceRepository';
import { actingAs } from '../support/accessModel';
import { startTestServer, type Tenant, type TestServer } from '../support/testServer';

/**
 * DESIGN §3–4 end to end: two customers' feeds about one patient, through the real server, the in-process
 * worker and the aggregated endpoint.
 */
const NHS = 'https://fhir.nhs.uk/Id/nhs-number';
const ODS = 'https://fhir.nhs.uk/Id/ods-organization-code';
const SRC_ORG = 'http://fhir.patientsknowbest.com/codesystem/source-organization';
const LABEL = 'http://fhir.patientsknowbest.com/codesystem/privacy-label';

type Json = Record<string, any>;
let server: TestServer;
let a: Tenant;
let b: Tenant;

async function put(t: Tenant, resource: Json): Promise<void> {
  const res = await t.fetch(`${resource.resourceType}/${resource.id}`, { method: 'PUT', body: JSON.stringify(resource) });
  if (res.status >= 300) throw new Error(`${resource.resourceType}/${resource.id}: ${res.status} ${await res.text()}`);
}
/**
 * Stores a resource below the door, as the server's own repository does: a row written before the write guard
 * refused client-sent source codings (service/writeGuard.ts), which the aggregation must still strip.
 */
async function storeBelowTheDoor(t: Tenant, resource: Resource & { id: string }): Promise<void> {
  await new ResourceRepository(server.database.db.sql, [createSearchIndexer(), createOutboxHook()]).update(t.endpointId, resource);
}
async function agg(t: Tenant, path: string): Promise<Json> {
  const res = await server.aggregated(t, path);
  return { status: res.status, ...((await res.json()) as Json) };
}
const matches = (bundle: Json) => (bundle.entry ?? []).filter((e: Json) => e.search?.mode === 'match').map((e: Json) => e.resource);

beforeAll(async () => {
  server = await startTestServer();
  a = await server.provision({ name: 'Trust A' });
  b = await server.provision({ name: 'Trust B' });
  await put(a, { resourceType: 'Organization', id: 'orgA', identifier: [{ system: ODS, value: 'AAA' }], name: 'Trust A' });
  await put(a, {
    resourceType: 'Patient',
    id: 'pa',
    extension: [{ url: 'https://example.org/pref', valueString: 'from-A' }],
    identifier: [{ system: NHS, value: '9449305552' }],
    name: [{ family: 'Smith', given: ['Ann'] }],
    birthDate: '1970-01-01',
    managingOrganization: { reference: 'Organization/orgA' },
  });
  await storeBelowTheDoor(a, {
    resourceType: 'MedicationStatement',
    id: 'msA',
    status: 'active',
    medicationCodeableConcept: { text: 'aspirin' },
    subject: { reference: 'Patient/pa' },
    meta: {
      security: [
        { system: LABEL, code: 'GENERAL_HEALTH' },
        { system: SRC_ORG, code: 'forged' },
      ],
    },
  });
  await put(a, {
    resourceType: 'MedicationStatement',
    id: 'msBad',
    status: 'active',
    medicationCodeableConcept: { text: 'x' },
    subject: { identifier: { system: NHS, value: '9449305552' } },
  });
  // B writes later, so B is the most recently updated upstream.
  await new Promise((r) => setTimeout(r, 20));
  await put(b, { resourceType: 'Organization', id: 'orgB', identifier: [{ system: ODS, value: 'BBB' }], name: 'Trust B' });
  await put(b, {
    resourceType: 'Patient',
    id: 'pb',
    extension: [{ url: 'https://example.org/pref', valueString: 'from-B' }],
    identifier: [
      { system: NHS, value: '9449305552' },
      { system: 'https://b.example/mrn', value: 'B-77' },
    ],
    name: [{ family: 'Smith', given: ['Annie'] }],
    birthDate: '1970-01-02',
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
}, 120_000);
afterAll(() => server.close());

test('the two feeds appear as one Patient merged by the rules', async () => {
  const bundle = await agg(a, `Patient?identifier=${NHS}|9449305552`);
  const patients = matches(bundle);
  expect(patients).toHaveLength(1);
  const p = patients[0];
  expect(p.identifier).toEqual([
    { system: NHS, value: '9449305552' },
    { system: 'https://b.example/mrn', value: 'B-77' },
    { system: NHS, value: '9449305552' },
  ]);
  expect(p.name).toEqual([
    { family: 'Smith', given: ['Annie'] },
    { family: 'Smith', given: ['Ann'] },
  ]);
  expect(p.birthDate).toBe('1970-01-02');
  expect(p.extension).toEqual([{ url: 'https://example.org/pref', valueString: 'from-B' }]);
  expect(p.managingOrganization).toBeUndefined();
  // B's own view of the patient is the same merged resource.
  expect(matches(await agg(b, `Patient?identifier=${NHS}|9449305552`))[0].id).toBe(p.id);
});

test('MedicationStatements point at the aggregated Patient and carry their source organisation', async () => {
  const patient = matches(await agg(a, `Patient?identifier=${NHS}|9449305552`))[0];
  const orgA = matches(await agg(a, `Organization?identifier=${ODS}|AAA`))[0];
  const statements = matches(await agg(a, `MedicationStatement?subject=Patient/${patient.id}`));
  expect(statements.map((s: Json) => s.medicationCodeableConcept.text)).toEqual(['aspirin']);
  const ms = statements[0];
  expect(ms.subject.reference).toBe(`Patient/${patient.id}`);
  const source = ms.meta.security.filter((c: Json) => c.system === SRC_ORG);
  expect(source).toEqual([{ system: SRC_ORG, code: orgA.id }]);
  expect(ms.meta.security).toEqual(expect.arrayContaining([{ system: LABEL, code: 'GENERAL_HEALTH' }]));
});

test('each customer sees its own data; a consent grant to its team opens the other label', async () => {
  const texts = async (t: Tenant) =>
    matches(await agg(t, 'MedicationStatement?_total=accurate'))
      .map((s: Json) => s.medicationCodeableConcept.text)
      .sort();
  expect(await texts(a)).toEqual(['aspirin']);
  expect(await texts(b)).toEqual(['sertraline']);
  expect((await agg(a, 'MedicationStatement?_total=accurate')).total).toBe(1);
  const hidden = matches(await agg(b, 'MedicationStatement'))[0];
  expect((await server.aggregated(a, `MedicationStatement/${hidden.id}`)).status).toBe(404);

  const patient = matches(await agg(a, `Patient?identifier=${NHS}|9449305552`))[0];
  const team = actingAs(server, a, { teamId: 'team-a' });
  expect(await texts(team)).toEqual(['aspirin']);
  await server.admin('POST', '/admin/consents', { patientId: patient.id, grantee: 'CareTeam/team-a', label: 'MENTAL_HEALTH' });
  expect(await texts(team)).toEqual(['aspirin', 'sertraline']);
  expect((await server.aggregated(team, `MedicationStatement/${hidden.id}`)).status).toBe(200);
  // The grant is the team's: the customer's client acting as no one still sees its own data only.
  expect(await texts(a)).toEqual(['aspirin']);
  await server.admin('DELETE', '/admin/consents', { patientId: patient.id, grantee: 'CareTeam/team-a', label: 'MENTAL_HEALTH' });
  expect(await texts(team)).toEqual(['aspirin']);
});

test('an excluded resource shows its reason to its owner only', async () => {
  const res = await a.fetch('MedicationStatement/msBad/$aggregation-status');
  expect(res.status).toBe(200);
  const outcome = (await res.json()) as Json;
  expect(outcome.issue[0]).toMatchObject({ severity: 'error', code: 'business-rule' });
  expect(outcome.issue[0].diagnostics).toMatch(/subject has no 'reference'/);
  const included = (await (await a.fetch('MedicationStatement/msA/$aggregation-status')).json()) as Json;
  expect(included.issue[0].diagnostics).toMatch(/is aggregated as MedicationStatement\//);
  expect((await b.fetch(`${a.baseUrl}/MedicationStatement/msBad/$aggregation-status`)).status).toBe(404);
});

test('the aggregated endpoint is read-only; unsupported types search empty; metadata lists the aggregated types', async () => {
  const write = await server.aggregated(a, 'Patient', { method: 'POST', body: JSON.stringify({ resourceType: 'Patient' }) });
  expect(write.status).toBe(405);
  expect(((await write.json()) as Json).resourceType).toBe('OperationOutcome');
  expect((await server.aggregated(a, 'Patient/x', { method: 'PUT', body: '{}' })).status).toBe(405);
  const claims = await agg(a, 'Claim?patient=x');
  expect(claims.status).toBe(200);
  expect(claims.type).toBe('searchset');
  expect(claims.entry).toEqual([]);
  const metadata = await agg(a, 'metadata');
  const types = metadata.rest[0].resource.map((r: Json) => r.type);
  expect(types).toContain('Patient');
  expect(types).toContain('MedicationStatement');
  expect(types).not.toContain('Claim');
  expect(metadata.rest[0].resource[0].interaction.map((i: Json) => i.code)).not.toContain('create');
  expect((await server.aggregated(a, 'MedicationStatement')).status).toBe(200);
  const noToken = await fetch(`${server.url}/fhir/aggregated/Patient`);
  expect(noToken.status).toBe(401);
});

test('deleting a member re-merges the group under the same id; the version moves only when content changes', async () => {
  const before = matches(await agg(a, `Patient?identifier=${NHS}|9449305552`))[0];
  // Re-sending identical content changes nothing in the aggregate.
  const unchanged = (await (await b.fetch('Patient/pb')).json()) as Json;
  await put(b, unchanged);
  await server.waitForAggregation();
  expect((await agg(a, `Patient/${before.id}`)).meta.versionId).toBe(before.meta.versionId);

  await b.fetch('Patient/pb', { method: 'DELETE' });
  await server.waitForAggregation();
  const after = await agg(a, `Patient/${before.id}`);
  expect(after.identifier).toEqual([{ system: NHS, value: '9449305552' }]);
  expect(after.name).toEqual([{ family: 'Smith', given: ['Ann'] }]);
  expect(after.birthDate).toBe('1970-01-01');
  expect(Number(after.meta.versionId)).toBeGreaterThan(Number(before.meta.versionId));
});

test('groups that merge keep the oldest id; the absorbed id answers with a replaced-by link', async () => {
  await put(a, { resourceType: 'Patient', id: 'c1', identifier: [{ system: NHS, value: '111' }], managingOrganization: { reference: 'Organization/orgA' } });
  await server.waitForAggregation();
  await put(b, { resourceType: 'Patient', id: 'c2', identifier: [{ system: 'https://b.example/mrn', value: 'C-2' }] });
  await server.waitForAggregation();
  const first = matches(await agg(a, `Patient?identifier=${NHS}|111`))[0];
  const second = matches(await agg(b, 'Patient?identifier=https://b.example/mrn|C-2'))[0];
  expect(first.id).not.toBe(second.id);
  // A third record carrying both identifiers joins the two groups.
  await put(b, {
    resourceType: 'Patient',
    id: 'c3',
    identifier: [
      { system: NHS, value: '111' },
      { system: 'https://b.example/mrn', value: 'C-2' },
    ],
  });
  await server.waitForAggregation();
  const merged = matches(await agg(a, `Patient?identifier=${NHS}|111`));
  expect(merged.map((p: Json) => p.id)).toEqual([first.id]);
  const absorbed = await agg(a, `Patient/${second.id}`);
  expect(absorbed.link).toEqual([{ other: { reference: `Patient/${first.id}` }, type: 'replaced-by' }]);
});

test('an STU3 feed is mapped to R4', async () => {
  const s = await server.provision({ fhirVersion: 'STU3', defaultSourceOrg: 'Organization/o3' });
  await put(s, { resourceType: 'Organization', id: 'o3', identifier: [{ system: ODS, value: 'S3' }], name: 'STU3 trust' });
  await put(s, { resourceType: 'Patient', id: 'p3', identifier: [{ system: NHS, value: '333' }] });
  await put(s, {
    resourceType: 'Condition',
    id: 'c',
    clinicalStatus: 'active',
    verificationStatus: 'confirmed',
    code: { text: 'asthma' },
    subject: { reference: 'Patient/p3' },
    assertedDate: '2020-02-02',
  });
  await server.waitForAggregation();
  const conditions = matches(await agg(s, 'Condition?code:text=asthma'));
  expect(conditions).toHaveLength(1);
  expect(conditions[0].clinicalStatus).toEqual({ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-clinical', code: 'active' }] });
  expect(conditions[0].recordedDate).toBe('2020-02-02'); // as HAPI's VersionConvertor_30_40 maps assertedDate
  expect(conditions[0].extension).toBeUndefined();
  const org = matches(await agg(s, `Organization?identifier=${ODS}|S3`))[0];
  expect(conditions[0].meta.security).toEqual(expect.arrayContaining([{ system: SRC_ORG, code: org.id }]));
});

test('a resource with no source organisation is excluded with that reason', async () => {
  const t = await server.provision();
  await put(t, { resourceType: 'Patient', id: 'np', identifier: [{ system: NHS, value: '444' }] });
  await put(t, { resourceType: 'Observation', id: 'o', status: 'final', code: { text: 'x' }, subject: { reference: 'Patient/np' } });
  await server.waitForAggregation();
  const outcome = (await (await t.fetch('Observation/o/$aggregation-status')).json()) as Json;
  expect(outcome.issue[0].diagnostics).toMatch(/no source organisation/);
});

test('a resource whose target arrives later is aggregated when the target arrives', async () => {
  const t = await server.provision({ defaultSourceOrg: 'Organization/late-org' });
  await put(t, { resourceType: 'Organization', id: 'late-org', identifier: [{ system: ODS, value: 'LATE' }] });
  await put(t, { resourceType: 'Observation', id: 'early', status: 'final', code: { text: 'pulse' }, subject: { reference: 'Patient/late' } });
  await server.waitForAggregation();
  const waiting = (await (await t.fetch('Observation/early/$aggregation-status')).json()) as Json;
  expect(waiting.issue[0].diagnostics).toMatch(/refers to Patient\/late, which is not in the aggregated record/);
  await put(t, { resourceType: 'Patient', id: 'late', identifier: [{ system: NHS, value: '555' }] });
  await server.waitForAggregation();
  const patient = matches(await agg(t, `Patient?identifier=${NHS}|555`))[0];
  const observations = matches(await agg(t, `Observation?subject=Patient/${patient.id}`));
  expect(observations.map((o: Json) => o.code.text)).toEqual(['pulse']);
});

test('when a target leaves the aggregated record, what refers to it leaves too', async () => {
  const t = await server.provision({ defaultSourceOrg: 'Organization/leaving-org' });
  await put(t, { resourceType: 'Organization', id: 'leaving-org', identifier: [{ system: ODS, value: 'LEAVING' }] });
  await put(t, { resourceType: 'Patient', id: 'leaving', identifier: [{ system: NHS, value: '666' }] });
  await put(t, { resourceType: 'Observation', id: 'dependent', status: 'final', code: { text: 'weight' }, subject: { reference: 'Patient/leaving' } });
  await server.waitForAggregation();
  expect(matches(await agg(t, 'Observation?code:text=weight'))).toHaveLength(1);
  await t.fetch('Patient/leaving', { method: 'DELETE' });
  await server.waitForAggregation();
  expect(matches(await agg(t, 'Observation?code:text=weight'))).toHaveLength(0);
  const status = (await (await t.fetch('Observation/dependent/$aggregation-status')).json()) as Json;
  expect(status.issue[0].diagnostics).toMatch(/refers to Patient\/leaving/);
});
