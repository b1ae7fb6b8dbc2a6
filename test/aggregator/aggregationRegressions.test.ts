import { startTestServer, type Tenant, type TestServer } from '../support/testServer';

/**
 * Issue 15 item 6: the endpoint's default source organisation counts only as the aggregated Organization it
 * stands for (a, b), and a group that splits gives an absorbed id back to the members it stood for (c).
 */
const NHS = 'https://fhir.nhs.uk/Id/nhs-number';
const ODS = 'https://fhir.nhs.uk/Id/ods-organization-code';
const MRN = 'https://c.example/mrn';
const SRC_ORG = 'http://fhir.patientsknowbest.com/codesystem/source-organization';

type Json = Record<string, any>;
let server: TestServer;

async function put(t: Tenant, resource: Json): Promise<void> {
  const res = await t.fetch(`${resource.resourceType}/${resource.id}`, { method: 'PUT', body: JSON.stringify(resource) });
  if (res.status >= 300) throw new Error(`${resource.resourceType}/${resource.id}: ${res.status} ${await res.text()}`);
}
async function agg(t: Tenant, path: string): Promise<Json> {
  const res = await server.aggregated(t, path);
  return { status: res.status, ...((await res.json()) as Json) };
}
const matches = (bundle: Json) => (bundle.entry ?? []).filter((e: Json) => e.search?.mode === 'match').map((e: Json) => e.resource);
const sourceCodes = (resource: Json) => (resource.meta?.security ?? []).filter((c: Json) => c.system === SRC_ORG).map((c: Json) => c.code);
async function status(t: Tenant, ref: string): Promise<string> {
  return ((await (await t.fetch(`${ref}/$aggregation-status`)).json()) as Json).issue[0].diagnostics;
}

beforeAll(async () => {
  server = await startTestServer();
}, 60_000);
afterAll(() => server.close());

test('a default source organisation without an identifier excludes what it would source, until it gets one', async () => {
  const t = await server.provision({ defaultSourceOrg: 'Organization/noid' });
  await put(t, { resourceType: 'Organization', id: 'noid', name: 'No identifier' });
  await put(t, { resourceType: 'Patient', id: 'p', identifier: [{ system: NHS, value: '9000000001' }] });
  await put(t, { resourceType: 'Observation', id: 'o', status: 'final', code: { text: 'pulse' }, subject: { reference: 'Patient/p' } });
  await server.waitForAggregation();
  // No copy carries a source-organization code that is no aggregated Organization.
  expect(matches(await agg(t, 'Observation?code:text=pulse'))).toEqual([]);
  expect(await status(t, 'Observation/o')).toMatch(/default source organisation Organization\/noid is not in the aggregated record \(Organization needs at least one identifier/);

  await put(t, { resourceType: 'Organization', id: 'noid', identifier: [{ system: ODS, value: 'NOID1' }], name: 'Now identified' });
  await server.waitForAggregation();
  const [observation] = matches(await agg(t, 'Observation?code:text=pulse'));
  const [code] = sourceCodes(observation);
  const org = await agg(t, `Organization/${code}`);
  expect(org.status).toBe(200);
  expect(org.identifier).toEqual([{ system: ODS, value: 'NOID1' }]);
});

test('a default source organisation created after the data is picked up: the copies carry its aggregated id', async () => {
  const t = await server.provision({ defaultSourceOrg: 'Organization/later' });
  await put(t, { resourceType: 'Patient', id: 'p', identifier: [{ system: NHS, value: '9000000002' }] });
  await put(t, { resourceType: 'Observation', id: 'o', status: 'final', code: { text: 'weight' }, subject: { reference: 'Patient/p' } });
  await server.waitForAggregation();
  expect(matches(await agg(t, 'Observation?code:text=weight'))).toEqual([]);
  expect(await status(t, 'Observation/o')).toMatch(/default source organisation Organization\/later is not in the aggregated record/);

  await put(t, { resourceType: 'Organization', id: 'later', identifier: [{ system: ODS, value: 'LATER1' }], name: 'Late trust' });
  await server.waitForAggregation();
  const [org] = matches(await agg(t, `Organization?identifier=${ODS}|LATER1`));
  const [observation] = matches(await agg(t, 'Observation?code:text=weight'));
  expect(org.id).not.toBe('later');
  expect(sourceCodes(observation)).toEqual([org.id]);
  expect((await agg(t, `Organization/${sourceCodes(observation)[0]}`)).status).toBe(200);
});

test('a default source organisation that loses its identifier takes the copies it sourced out with it', async () => {
  const t = await server.provision({ defaultSourceOrg: 'Organization/fading' });
  await put(t, { resourceType: 'Organization', id: 'fading', identifier: [{ system: ODS, value: 'FADE1' }] });
  await put(t, { resourceType: 'Patient', id: 'p', identifier: [{ system: NHS, value: '9000000003' }] });
  await put(t, { resourceType: 'Observation', id: 'o', status: 'final', code: { text: 'height' }, subject: { reference: 'Patient/p' } });
  await server.waitForAggregation();
  expect(matches(await agg(t, 'Observation?code:text=height'))).toHaveLength(1);
  await put(t, { resourceType: 'Organization', id: 'fading', name: 'No identifier any more' });
  await server.waitForAggregation();
  expect(matches(await agg(t, 'Observation?code:text=height'))).toEqual([]);
  expect(await status(t, 'Observation/o')).toMatch(/default source organisation Organization\/fading is not in the aggregated record/);
});

test('after a group splits, the part that was absorbed gets its own id back and that id stops answering replaced-by', async () => {
  const t = await server.provision({ defaultSourceOrg: 'Organization/org' });
  await put(t, { resourceType: 'Organization', id: 'org', identifier: [{ system: ODS, value: 'SPLIT1' }] });
  await put(t, { resourceType: 'Patient', id: 'a', identifier: [{ system: NHS, value: '9000000004' }], name: [{ family: 'Alpha' }] });
  await server.waitForAggregation();
  await put(t, { resourceType: 'Patient', id: 'c', identifier: [{ system: MRN, value: 'C-4' }], name: [{ family: 'Gamma' }] });
  await put(t, { resourceType: 'Observation', id: 'oc', status: 'final', code: { text: 'of C' }, subject: { reference: 'Patient/c' } });
  await server.waitForAggregation();
  const [first] = matches(await agg(t, `Patient?identifier=${NHS}|9000000004`));
  const [second] = matches(await agg(t, `Patient?identifier=${MRN}|C-4`));
  expect(first.id).not.toBe(second.id);

  // B bridges A and C: one group, under the older id; C's id answers replaced-by.
  await put(t, {
    resourceType: 'Patient',
    id: 'b',
    identifier: [
      { system: NHS, value: '9000000004' },
      { system: MRN, value: 'C-4' },
    ],
  });
  await server.waitForAggregation();
  expect((await agg(t, `Patient/${second.id}`)).link).toEqual([{ other: { reference: `Patient/${first.id}` }, type: 'replaced-by' }]);
  expect(matches(await agg(t, 'Observation?code:text=of C'))[0].subject.reference).toBe(`Patient/${first.id}`);

  // B goes: C is on its own again, under the id it had, and that id is C's record, not a link to A.
  expect((await t.fetch('Patient/b', { method: 'DELETE' })).status).toBe(204);
  await server.waitForAggregation();
  expect(matches(await agg(t, `Patient?identifier=${MRN}|C-4`)).map((p: Json) => p.id)).toEqual([second.id]);
  const back = await agg(t, `Patient/${second.id}`);
  expect(back.link).toBeUndefined();
  expect(back.name).toEqual([{ family: 'Gamma' }]);
  const a = await agg(t, `Patient/${first.id}`);
  expect(a.identifier).toEqual([{ system: NHS, value: '9000000004' }]);
  expect(matches(await agg(t, 'Observation?code:text=of C'))[0].subject.reference).toBe(`Patient/${second.id}`);
});
