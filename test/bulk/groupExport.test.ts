import { aggregatedId, putResource as put, startTestServer, type Tenant, type TestServer } from '../support/testServer';

/**
 * Group-level Bulk Data export on the aggregated endpoint (issue 19 item 5), with Group aggregated
 * (AGGREGATED_TYPES=+Group): customers' Groups are copied with their members rewritten to the merged
 * Patients, and `Group/[id]/$export` holds the patient compartments of the Group's current members, each row
 * access-filtered like a search; the Group is read as the caller reads it (404 when hidden, as when unknown).
 */
const NHS = 'https://fhir.nhs.uk/Id/nhs-number';
const LABEL = 'http://fhir.patientsknowbest.com/codesystem/privacy-label';
const AGG = '/fhir/aggregated/';

type Json = Record<string, any>;
let server: TestServer;
let a: Tenant;
let b: Tenant;
/** Aggregated ids: the merged Patient of A's `pa` and B's `pb`, A's other patients, A's and B's Groups. */
const ids: Record<string, string> = {};

const local = (url: string) => url.slice(url.indexOf(AGG) + AGG.length);
const kickOff = (t: Tenant, p: string) => server.aggregated(t, p, { headers: { prefer: 'respond-async', accept: 'application/fhir+json' } });

/** Kicks off an export, polls it to the end and answers every file's resources by type. */
async function exported(t: Tenant, p: string): Promise<Record<string, Json[]>> {
  const res = await kickOff(t, p);
  if (res.status !== 202) throw new Error(`${p}: ${res.status} ${await res.text()}`);
  const statusUrl = local(res.headers.get('content-location') as string);
  for (let i = 0; i < 600; i++) {
    const status = await server.aggregated(t, statusUrl);
    if (status.status === 200) {
      const out: Record<string, Json[]> = {};
      for (const o of ((await status.json()) as Json).output) {
        const text = await (await server.aggregated(t, local(o.url))).text();
        out[o.type] = text
          .split('\n')
          .filter((l) => l !== '')
          .map((l) => JSON.parse(l) as Json);
      }
      return out;
    }
    if (status.status !== 202) throw new Error(`${p}: ${status.status} ${await status.text()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('the export did not finish');
}
const observation = (id: string, patient: string, label: string) => ({
  resourceType: 'Observation',
  id,
  status: 'final',
  code: { text: id },
  subject: { reference: `Patient/${patient}` },
  meta: { security: [{ system: LABEL, code: label }] },
});
const texts = (rows: Json[] | undefined) => (rows ?? []).map((r) => r.code.text).sort();

beforeAll(async () => {
  server = await startTestServer({ AGGREGATED_TYPES: '+Group' });
  // A Group belongs to no patient: its source is the endpoint's default organisation.
  a = await server.provision({ name: 'Trust A', defaultSourceOrg: 'Organization/orgA' });
  b = await server.provision({ name: 'Trust B', defaultSourceOrg: 'Organization/orgB' });
  await put(a, { resourceType: 'Organization', id: 'orgA', identifier: [{ system: 'urn:ods', value: 'AAA' }] });
  await put(b, { resourceType: 'Organization', id: 'orgB', identifier: [{ system: 'urn:ods', value: 'BBB' }] });
  // pa (A) and pb (B) are one merged Patient; pa2…pa5 are A's alone.
  for (const [id, nhs] of [
    ['pa', '9000000001'],
    ['pa2', '9000000002'],
    ['pa3', '9000000003'],
    ['pa4', '9000000004'],
    ['pa5', '9000000005'],
  ]) {
    await put(a, { resourceType: 'Patient', id, identifier: [{ system: NHS, value: nhs }], managingOrganization: { reference: 'Organization/orgA' } });
    await put(a, observation(`obs-${id}`, id, 'GENERAL_HEALTH'));
  }
  await put(b, { resourceType: 'Patient', id: 'pb', identifier: [{ system: NHS, value: '9000000001' }], managingOrganization: { reference: 'Organization/orgB' } });
  await put(b, observation('obs-pb', 'pb', 'MENTAL_HEALTH'));
  await put(a, {
    resourceType: 'Group',
    id: 'cohort',
    type: 'person',
    actual: true,
    managingEntity: { reference: 'Organization/orgA' },
    member: [
      { entity: { reference: 'Patient/pa' } },
      { entity: { reference: 'Patient/pa2' }, period: { start: '2020-01-01' } },
      // No longer members (R4 Group.member: inactive, or a period that has ended).
      { entity: { reference: 'Patient/pa3' }, inactive: true },
      { entity: { reference: 'Patient/pa4' }, period: { start: '2019', end: '2021-06' } },
    ],
  });
  await put(b, { resourceType: 'Group', id: 'bcohort', type: 'person', actual: true, member: [{ entity: { reference: 'Patient/pb' } }] });
  await server.waitForAggregation();
  for (const id of ['pa', 'pa2', 'pa3']) ids[id] = await aggregatedId(a, 'Patient', id);
  ids.cohort = await aggregatedId(a, 'Group', 'cohort');
  ids.bcohort = await aggregatedId(b, 'Group', 'bcohort');
}, 120_000);
afterAll(() => server.close());

test("a customer's Group is aggregated with its members rewritten to the merged Patients, seen by that customer alone", async () => {
  expect(await aggregatedId(b, 'Patient', 'pb')).toBe(ids.pa);
  const read = await server.aggregated(a, `Group/${ids.cohort}`);
  expect(read.status).toBe(200);
  const group = (await read.json()) as Json;
  expect(group.member.map((m: Json) => m.entity.reference)).toEqual([`Patient/${ids.pa}`, `Patient/${ids.pa2}`, `Patient/${ids.pa3}`, expect.stringMatching(/^Patient\//)]);
  expect(group.managingEntity.reference).toMatch(/^Organization\//);
  // No patient of its own: its source is A's default organisation, and no source-patient coding.
  const systems = (group.meta.security ?? []).map((c: Json) => c.system);
  expect(systems).toContain('http://fhir.patientsknowbest.com/codesystem/source-organization');
  expect(systems).not.toContain('http://fhir.patientsknowbest.com/codesystem/source-patient');
  expect((await server.aggregated(b, `Group/${ids.cohort}`)).status).toBe(404);
  const listed = (await (await server.aggregated(b, 'Group')).json()) as Json;
  expect((listed.entry ?? []).map((e: Json) => e.resource.id)).toEqual([ids.bcohort]);
  const metadata = (await (await server.aggregated(a, 'metadata')).json()) as Json;
  const groupEntry = metadata.rest[0].resource.find((r: Json) => r.type === 'Group');
  expect(groupEntry.operation).toEqual([{ name: 'export', definition: 'http://hl7.org/fhir/uv/bulkdata/OperationDefinition/group-export' }]);
});

test("Group/[id]/$export holds exactly the current members' compartments the caller may see, and the Group itself", async () => {
  const files = await exported(a, `Group/${ids.cohort}/$export`);
  expect(Object.keys(files).sort()).toEqual(['Group', 'Observation', 'Patient']);
  expect(files.Group.map((g) => g.id)).toEqual([ids.cohort]);
  expect(files.Patient.map((p) => p.id).sort()).toEqual([ids.pa, ids.pa2].sort());
  // pa3 (inactive) and pa4 (period ended) are not members now; pa5 never was; B's obs-pb is not A's to see.
  expect(texts(files.Observation)).toEqual(['obs-pa', 'obs-pa2']);
  // B's export of its own Group of the same merged Patient: B's data, not A's.
  const fromB = await exported(b, `Group/${ids.bcohort}/$export`);
  expect(texts(fromB.Observation)).toEqual(['obs-pb']);
  expect(fromB.Patient.map((p) => p.id)).toEqual([ids.pa]);
});

test('_type and _typeFilter narrow a Group export; _type=Group alone gives the Group', async () => {
  const typed = await exported(a, `Group/${ids.cohort}/$export?_type=Observation&_typeFilter=${encodeURIComponent('Observation?code:text=obs-pa2')}`);
  expect(Object.keys(typed)).toEqual(['Observation']);
  expect(texts(typed.Observation)).toEqual(['obs-pa2']);
  const group = await exported(a, `Group/${ids.cohort}/$export?_type=Group`);
  expect(Object.keys(group)).toEqual(['Group']);
  expect(group.Group.map((g) => g.id)).toEqual([ids.cohort]);
});

test("another customer's Group answers 404 exactly as an unknown id does, and starts no job", async () => {
  const hidden = await kickOff(b, `Group/${ids.cohort}/$export`);
  const unknown = await kickOff(b, 'Group/no-such-group/$export');
  expect([hidden.status, unknown.status]).toEqual([404, 404]);
  expect(hidden.headers.get('content-location')).toBeNull();
  const [h, u] = [(await hidden.json()) as Json, (await unknown.json()) as Json];
  expect(h.issue[0].code).toBe(u.issue[0].code);
  expect(h.issue[0].diagnostics.replace(ids.cohort, 'X')).toBe(u.issue[0].diagnostics.replace('no-such-group', 'X'));
});

test('tokens: a patient-scoped one sees no Group (404); one without Group read is refused (403); a legacy-family one is not a token of this endpoint (401)', async () => {
  const as = (family: 'fhir' | 'legacy', subject: { scopes: string[]; patientId?: string }): Tenant =>
    ({ ...a, token: server.tokens.issue(family, { clientId: a.clientId, customerId: a.customerId, ...subject }).access_token }) as Tenant;
  expect((await kickOff(as('fhir', { scopes: ['patient/*.rs'], patientId: ids.pa }), `Group/${ids.cohort}/$export`)).status).toBe(404);
  const noGroupRead = await kickOff(as('fhir', { scopes: ['system/Patient.rs', 'system/Observation.rs'] }), `Group/${ids.cohort}/$export`);
  expect(noGroupRead.status).toBe(403);
  expect(noGroupRead.headers.get('www-authenticate')).toContain('insufficient_scope');
  expect((await kickOff(as('fhir', { scopes: ['system/Group.r', 'system/Patient.rs'] }), `Group/${ids.cohort}/$export?_type=Patient`)).status).toBe(202);
  const legacy = await kickOff(as('legacy', { scopes: ['system/*.cruds'] }), `Group/${ids.cohort}/$export`);
  expect(legacy.status).toBe(401);
  expect(legacy.headers.get('content-location')).toBeNull();
});
