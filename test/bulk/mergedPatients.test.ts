import { randomUUID } from 'node:crypto';
import { aggregatedId, putResource as put, startTestServer, type Tenant, type TestServer } from '../support/testServer';

/**
 * A Patient id absorbed by a merge (DESIGN §3.8: it answers with a `replaced-by` link) named where an operation
 * takes a patient — the Bulk Data `patient` parameter, `Patient/[id]/$everything` — stands for the surviving
 * Patient, and the answer says so (the manifest's `error` file, a Bundle entry of search mode `outcome`).
 * The survivor is read as the caller reads it: a caller who may not see it gets the answer about an unknown
 * patient. Searches match references as stored, which the aggregator has repointed at the survivor.
 */
const NHS = 'https://fhir.nhs.uk/Id/nhs-number';
const B_MRN = 'urn:b-mrn';
const LABEL = 'http://fhir.patientsknowbest.com/codesystem/privacy-label';
const AGG = '/fhir/aggregated/';

type Json = Record<string, any>;
let server: TestServer;
let a: Tenant;
let b: Tenant;
/** A customer with no data about the patient. */
let c: Tenant;
/** The merged Patient's aggregated id (A's pa came first), and the id B's pb had before the merge absorbed it. */
let survivor: string;
let absorbed: string;
let cohort: string;

const local = (url: string) => url.slice(url.indexOf(AGG) + AGG.length);
const parameters = (...parameter: Json[]) => ({ resourceType: 'Parameters', parameter });
const patientParam = (id: string) => ({ name: 'patient', valueReference: { reference: `Patient/${id}` } });
const post = (t: Tenant, p: string, body: Json) =>
  server.aggregated(t, p, { method: 'POST', body: JSON.stringify(body), headers: { prefer: 'respond-async', accept: 'application/fhir+json' } });

/** Polls a kick-off's job to the end; answers the manifest, every output file's resources by type, and the error files' lines. */
async function finished(t: Tenant, kick: Response): Promise<{ manifest: Json; files: Record<string, Json[]>; messages: Json[] }> {
  if (kick.status !== 202) throw new Error(`kick-off: ${kick.status} ${await kick.text()}`);
  const statusUrl = local(kick.headers.get('content-location') as string);
  const lines = async (url: string) =>
    (await (await server.aggregated(t, local(url))).text())
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as Json);
  for (let i = 0; i < 600; i++) {
    const status = await server.aggregated(t, statusUrl);
    if (status.status === 200) {
      const manifest = (await status.json()) as Json;
      const files: Record<string, Json[]> = {};
      for (const o of manifest.output) files[o.type] = await lines(o.url);
      const messages: Json[] = [];
      for (const o of manifest.error) messages.push(...(await lines(o.url)));
      return { manifest, files, messages };
    }
    if (status.status !== 202) throw new Error(`status: ${status.status} ${await status.text()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('the export did not finish');
}
const texts = (rows: Json[] | undefined) => (rows ?? []).map((r) => r.code.text).sort();
const ids = (rows: Json[] | undefined) => (rows ?? []).map((r) => r.id).sort();
async function agg(t: Tenant, path: string): Promise<Json> {
  const res = await server.aggregated(t, path);
  return { status: res.status, ...((await res.json()) as Json) };
}

beforeAll(async () => {
  server = await startTestServer({ AGGREGATED_TYPES: '+Group' });
  a = await server.provision({ name: 'Trust A', defaultSourceOrg: 'Organization/orgA' });
  b = await server.provision({ name: 'Trust B', defaultSourceOrg: 'Organization/orgB' });
  c = await server.provision({ name: 'Trust C', defaultSourceOrg: 'Organization/orgC' });
  const observation = (id: string, patient: string) => ({
    resourceType: 'Observation',
    id,
    status: 'final',
    code: { text: id },
    subject: { reference: `Patient/${patient}` },
    meta: { security: [{ system: LABEL, code: 'GENERAL_HEALTH' }] },
  });
  await put(a, { resourceType: 'Organization', id: 'orgA', identifier: [{ system: 'urn:ods', value: 'AAA' }] });
  await put(a, { resourceType: 'Patient', id: 'pa', identifier: [{ system: NHS, value: '9300000001' }], managingOrganization: { reference: 'Organization/orgA' } });
  await put(a, observation('obs-pa', 'pa'));
  await put(a, { resourceType: 'Group', id: 'cohort', type: 'person', actual: true, member: [{ entity: { reference: 'Patient/pa' } }] });
  await put(c, { resourceType: 'Patient', id: 'pc', identifier: [{ system: NHS, value: '9300000009' }] });
  await server.waitForAggregation();
  survivor = await aggregatedId(a, 'Patient', 'pa');
  cohort = await aggregatedId(a, 'Group', 'cohort');
  // B knows the patient by its own number only: a Patient of its own, until a record carrying both numbers joins them.
  await put(b, { resourceType: 'Organization', id: 'orgB', identifier: [{ system: 'urn:ods', value: 'BBB' }] });
  await put(b, { resourceType: 'Patient', id: 'pb', identifier: [{ system: B_MRN, value: 'PB-1' }], managingOrganization: { reference: 'Organization/orgB' } });
  await put(b, observation('obs-pb', 'pb'));
  await server.waitForAggregation();
  absorbed = await aggregatedId(b, 'Patient', 'pb');
  await put(b, {
    resourceType: 'Patient',
    id: 'pb-bridge',
    identifier: [
      { system: NHS, value: '9300000001' },
      { system: B_MRN, value: 'PB-1' },
    ],
    managingOrganization: { reference: 'Organization/orgB' },
  });
  await server.waitForAggregation();
}, 120_000);
afterAll(() => server?.close());

test('the world: the merge kept the older id, and the absorbed one answers with a replaced-by link', async () => {
  expect(absorbed).not.toBe(survivor);
  expect(await aggregatedId(b, 'Patient', 'pb')).toBe(survivor);
  for (const t of [a, b]) {
    const stub = await agg(t, `Patient/${absorbed}`);
    expect(stub.link).toEqual([{ other: { reference: `Patient/${survivor}` }, type: 'replaced-by' }]);
  }
  expect((await agg(c, `Patient/${absorbed}`)).status).toBe(404);
});

test("POST Patient/$export naming an absorbed id exports the survivor's compartment as the caller sees it; the manifest's error file names the substitution", async () => {
  for (const [t, own] of [
    [a, 'obs-pa'],
    [b, 'obs-pb'],
  ] as const) {
    const viaAbsorbed = await finished(t, await post(t, 'Patient/$export', parameters(patientParam(absorbed))));
    expect(ids(viaAbsorbed.files.Patient)).toContain(survivor);
    expect(texts(viaAbsorbed.files.Observation)).toEqual([own]);
    const direct = await finished(t, await post(t, 'Patient/$export', parameters(patientParam(survivor))));
    expect(viaAbsorbed.files).toEqual(direct.files);
    expect(direct.manifest.error).toEqual([]);
    expect(viaAbsorbed.manifest.error).toEqual([{ type: 'OperationOutcome', url: expect.stringContaining('/$export-file/'), count: 1 }]);
    expect(viaAbsorbed.messages).toEqual([
      {
        resourceType: 'OperationOutcome',
        issue: [
          {
            severity: 'information',
            code: 'informational',
            diagnostics: `Patient/${absorbed} was merged into Patient/${survivor} (its link replaced-by): this export holds Patient/${survivor}'s compartment`,
          },
        ],
      },
    ]);
  }
  // Named with the survivor too: one compartment, once.
  const both = await finished(a, await post(a, 'Patient/$export', parameters(patientParam(absorbed), patientParam(survivor), { name: '_type', valueString: 'Observation' })));
  expect(texts(both.files.Observation)).toEqual(['obs-pa']);
});

test('POST Group/[id]/$export naming an absorbed id: the survivor is the member, and its compartment is exported', async () => {
  const group = await finished(a, await post(a, `Group/${cohort}/$export`, parameters(patientParam(absorbed))));
  expect(ids(group.files.Group)).toEqual([cohort]);
  expect(texts(group.files.Observation)).toEqual(['obs-pa']);
  expect(group.messages.map((m) => m.issue[0].severity)).toEqual(['information']);
});

test("Patient/[absorbed]/$everything is the survivor's, with an outcome entry naming the substitution; its links keep the id asked for", async () => {
  const direct = await agg(a, `Patient/${survivor}/$everything`);
  const viaAbsorbed = await agg(a, `Patient/${absorbed}/$everything`);
  expect(viaAbsorbed.status).toBe(200);
  const [first, ...rest] = viaAbsorbed.entry;
  expect(first.search).toEqual({ mode: 'outcome' });
  expect(first.resource.issue[0]).toMatchObject({ severity: 'information', diagnostics: expect.stringContaining(`merged into Patient/${survivor}`) });
  expect(rest).toEqual(direct.entry);
  expect(rest.map((e: Json) => e.resource.code?.text).filter(Boolean)).toEqual(['obs-pa']);
  expect(direct.entry.every((e: Json) => e.search.mode === 'match')).toBe(true);
  const paged = await agg(a, `Patient/${absorbed}/$everything?_count=1`);
  expect(paged.link.find((l: Json) => l.relation === 'next').url).toContain(`/Patient/${absorbed}/$everything?`);
});

test('a caller who may not see the survivor gets exactly the answer about an unknown patient, and no job', async () => {
  const jobs = async () => (await server.database.db.sql.query<{ n: string }[]>('SELECT count(*)::text AS n FROM bulk_export_job'))[0].n;
  const before = await jobs();
  const ghost = randomUUID();
  const same = async (ask: (id: string) => Promise<Response>, status: number) => {
    const [real, unknown] = [await ask(absorbed), await ask(ghost)];
    expect([real.status, unknown.status]).toEqual([status, status]);
    expect(real.headers.get('content-location')).toBeNull();
    expect((await real.text()).split(absorbed).join('<id>')).toBe((await unknown.text()).split(ghost).join('<id>'));
  };
  await same((id) => post(c, 'Patient/$export', parameters(patientParam(id))), 400);
  await same((id) => server.aggregated(c, `Patient/${id}/$everything`), 404);
  // A's Group, named by B (who may not read it), stays the 404 of an unknown Group.
  await same((id) => post(b, `Group/${cohort}/$export`, parameters(patientParam(id))), 404);
  expect(await jobs()).toBe(before);
});

test('searches match references as stored: the aggregated Observations name the survivor, and a search by the absorbed id finds none', async () => {
  const bySurvivor = await agg(b, `Observation?subject=Patient/${survivor}`);
  expect(bySurvivor.entry.map((e: Json) => e.resource.code.text)).toEqual(['obs-pb']);
  const byAbsorbed = await agg(b, `Observation?subject=Patient/${absorbed}`);
  expect(byAbsorbed.status).toBe(200);
  expect(byAbsorbed.entry ?? []).toEqual([]);
});

// Last: it undoes the merge.
test('once the group splits again, the absorbed id answers for its own Patient, with no message', async () => {
  const res = await b.fetch('Patient/pb-bridge', { method: 'DELETE' });
  expect(res.status).toBeLessThan(300);
  await server.waitForAggregation();
  expect(await aggregatedId(b, 'Patient', 'pb')).toBe(absorbed);
  const own = await finished(b, await post(b, 'Patient/$export', parameters(patientParam(absorbed), { name: '_type', valueString: 'Observation' })));
  expect(texts(own.files.Observation)).toEqual(['obs-pb']);
  expect(own.manifest.error).toEqual([]);
  const everything = await agg(b, `Patient/${absorbed}/$everything`);
  expect(everything.entry.every((e: Json) => e.search.mode === 'match')).toBe(true);
  expect(everything.entry.map((e: Json) => e.resource.id)).toContain(absorbed);
});
