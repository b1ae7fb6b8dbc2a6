import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { startTestServer, type Tenant, type TestServer } from '../support/testServer';

/**
 * FHIR Bulk Data export on the aggregated endpoint (issue 19 item 5): kick-off, status polling, NDJSON files
 * per type served only to the requesting client, `_type`, `_since`, `_typeFilter`, cancellation and expiry,
 * every row access-filtered like a search.
 */
const NHS = 'https://fhir.nhs.uk/Id/nhs-number';
const ODS = 'https://fhir.nhs.uk/Id/ods-organization-code';
const LABEL = 'http://fhir.patientsknowbest.com/codesystem/privacy-label';
const LOINC = 'http://loinc.org';
const AGG = '/fhir/aggregated/';

type Json = Record<string, any>;
let server: TestServer;
let a: Tenant;
let b: Tenant;

async function put(t: Tenant, resource: Json): Promise<void> {
  const res = await t.fetch(`${resource.resourceType}/${resource.id}`, { method: 'PUT', body: JSON.stringify(resource) });
  if (res.status >= 300) throw new Error(`${resource.resourceType}/${resource.id}: ${res.status} ${await res.text()}`);
}
/** Absolute URLs from the server name its configured base; the test reaches the same path on its real port. */
const local = (url: string) => url.slice(url.indexOf(AGG) + AGG.length);
const kickOff = (t: Tenant, p: string, prefer = 'respond-async') => server.aggregated(t, p, { headers: { prefer, accept: 'application/fhir+json' } });

/** Kicks off an export and polls its status until it is done; answers the manifest. */
async function exportAll(t: Tenant, p: string): Promise<{ manifest: Json; statusUrl: string; progressSeen: boolean }> {
  const res = await kickOff(t, p);
  expect(res.status).toBe(202);
  const statusUrl = local(res.headers.get('content-location') as string);
  let progressSeen = false;
  for (let i = 0; i < 600; i++) {
    const status = await server.aggregated(t, statusUrl);
    if (status.status === 200) return { manifest: (await status.json()) as Json, statusUrl, progressSeen };
    if (status.status !== 202) throw new Error(`${p}: ${status.status} ${await status.text()}`);
    if (status.headers.get('x-progress')) progressSeen = true;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('the export did not finish');
}
async function lines(t: Tenant, url: string): Promise<Json[]> {
  const res = await server.aggregated(t, local(url));
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toContain('application/fhir+ndjson');
  return (await res.text())
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l));
}
async function contents(t: Tenant, manifest: Json): Promise<Record<string, Json[]>> {
  const out: Record<string, Json[]> = {};
  for (const o of manifest.output) {
    out[o.type] = await lines(t, o.url);
    expect(out[o.type]).toHaveLength(o.count);
  }
  return out;
}

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
  for (const [id, code] of [
    ['weight', '29463-7'],
    ['height', '8302-2'],
  ]) {
    await put(a, {
      resourceType: 'Observation',
      id,
      status: 'final',
      code: { coding: [{ system: LOINC, code }], text: id },
      subject: { reference: 'Patient/pa' },
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
}, 120_000);
afterAll(() => server.close());

test('a kick-off without Prefer: respond-async is a 400 naming it', async () => {
  const res = await kickOff(a, '$export', '');
  expect(res.status).toBe(400);
  expect(await res.text()).toContain('respond-async');
});

test('a system export: 202, then the manifest, and NDJSON files of only what the caller may see', async () => {
  const { manifest } = await exportAll(a, '$export');
  expect(manifest.requiresAccessToken).toBe(true);
  expect(manifest.request).toContain('/fhir/aggregated/$export');
  expect(Number.isNaN(Date.parse(manifest.transactionTime))).toBe(false);
  const files = await contents(a, manifest);
  expect(files.Observation.map((o) => o.code.text).sort()).toEqual(['height', 'weight']);
  expect(files.Patient).toHaveLength(1);
  // B's mental-health statement is not A's to see.
  expect(files.MedicationStatement).toBeUndefined();
  expect(JSON.stringify(files)).not.toContain('sertraline');
  // B's own export has it, and not A's observations.
  const fromB = await contents(b, (await exportAll(b, '$export')).manifest);
  expect(fromB.MedicationStatement.map((m) => m.medicationCodeableConcept.text)).toEqual(['sertraline']);
  expect(fromB.Observation).toBeUndefined();
});

test('each exported line is what a read of the resource answers, with resourceType first and decimals as written', async () => {
  // Sent as text: JSON.stringify would write 1.5, and FHIR says 1.50 is another value (datatypes.html#decimal).
  // An exponent is kept too: jsonb would print 1.85e1 as 18.5, so the store keeps it aside (fhir/losslessJson.ts).
  const body = `{"resourceType":"Observation","id":"bmi","status":"final","code":{"text":"bmi"},"subject":{"reference":"Patient/pa"},"valueQuantity":{"value":21.50,"unit":"kg/m2"},"referenceRange":[{"low":{"value":1.85e1,"unit":"kg/m2"}}],"note":[{"text":"line one\\nline \\"two\\""}]}`;
  const res = await a.fetch('Observation/bmi', { method: 'PUT', body });
  expect(res.status).toBeLessThan(300);
  await server.waitForAggregation();
  const { manifest } = await exportAll(a, '$export?_type=Observation,Patient');
  for (const o of manifest.output) {
    const text = await (await server.aggregated(a, local(o.url))).text();
    const rows = text.split('\n').filter((l) => l !== '');
    expect(rows).toHaveLength(o.count);
    for (const line of rows) {
      // PostgreSQL's text of the stored jsonb (", " and ": "), or ours where a number had to be restored.
      expect(line).toMatch(new RegExp(`^\\{"resourceType": ?"${o.type}", ?"id": ?`));
      const exported = JSON.parse(line) as Json;
      const read = await server.aggregated(a, `${o.type}/${exported.id}`);
      expect(read.status).toBe(200);
      const served = await read.text();
      expect(exported).toEqual(JSON.parse(served));
      // The same members in the same order: only white space differs.
      expect(Object.keys(exported)).toEqual(Object.keys(JSON.parse(served)));
      if (exported.code?.text === 'bmi') {
        expect(line).toMatch(/"value": ?21\.50\b/);
        expect(served).toContain('"value":21.50');
        expect(line).toMatch(/"value": ?1\.85e1\b/);
        expect(served).toContain('"value":1.85e1');
        expect(exported.note[0].text).toBe('line one\nline "two"');
      }
    }
  }
  expect(manifest.output.find((o: Json) => o.type === 'Observation').count).toBe(3);
});

test("another client cannot read a job's status or files, nor cancel it (404)", async () => {
  const { manifest, statusUrl } = await exportAll(a, '$export?_type=Observation');
  expect((await server.aggregated(b, statusUrl)).status).toBe(404);
  expect((await server.aggregated(b, local(manifest.output[0].url))).status).toBe(404);
  expect((await server.aggregated(b, statusUrl, { method: 'DELETE' })).status).toBe(404);
  expect((await server.aggregated(a, statusUrl)).status).toBe(200);
});

test('files are readable by the server user only', async () => {
  const { statusUrl } = await exportAll(a, '$export?_type=Patient');
  const id = statusUrl.split('/').pop() as string;
  const folder = path.join(server.dataDir, 'exports', id);
  for (const name of await readdir(folder)) expect((await stat(path.join(folder, name))).mode & 0o777).toBe(0o600);
});

test('_type, _typeFilter and _since narrow the export; Patient level keeps to patient compartments', async () => {
  const typed = await contents(a, (await exportAll(a, `$export?_type=Observation&_typeFilter=${encodeURIComponent(`Observation?code=${LOINC}|8302-2`)}`)).manifest);
  expect(Object.keys(typed)).toEqual(['Observation']);
  expect(typed.Observation.map((o) => o.code.text)).toEqual(['height']);
  const future = new Date(Date.now() + 3_600_000).toISOString();
  expect((await exportAll(a, `$export?_since=${encodeURIComponent(future)}`)).manifest.output).toEqual([]);
  const patientLevel = await contents(a, (await exportAll(a, 'Patient/$export')).manifest);
  expect(Object.keys(patientLevel).sort()).toEqual(['Observation', 'Patient']);
});

test('bad kick-off parameters are a 400 naming them, before any job exists', async () => {
  for (const [query, name] of [
    ['_type=Banana', '_type'],
    ['_since=yesterday', '_since'],
    ['_outputFormat=text/csv', '_outputFormat'],
    [`_typeFilter=${encodeURIComponent('Observation?nonsense=1')}`, 'nonsense'],
  ]) {
    const res = await kickOff(a, `$export?${query}`);
    expect(res.status).toBe(400);
    expect(await res.text()).toContain(name);
  }
});

test('DELETE on the status URL cancels: the job is gone and its files removed', async () => {
  const res = await kickOff(a, '$export');
  const statusUrl = local(res.headers.get('content-location') as string);
  const id = statusUrl.split('/').pop() as string;
  expect((await server.aggregated(a, statusUrl, { method: 'DELETE' })).status).toBe(202);
  expect((await server.aggregated(a, statusUrl)).status).toBe(404);
  // Whatever the export had written by then is removed once it notices.
  for (let i = 0; i < 200 && (await readdir(path.join(server.dataDir, 'exports'))).includes(id); i++) await new Promise((r) => setTimeout(r, 50));
  expect(await readdir(path.join(server.dataDir, 'exports'))).not.toContain(id);
});

test('an expired job answers 404 and its files are removed', async () => {
  const { manifest, statusUrl } = await exportAll(a, '$export?_type=Patient');
  const id = statusUrl.split('/').pop() as string;
  await server.database.db.sql.execute(`UPDATE bulk_export_job SET expires_at = clock_timestamp() - interval '1 second' WHERE id = $1`, id);
  expect((await server.aggregated(a, statusUrl)).status).toBe(404);
  expect((await server.aggregated(a, local(manifest.output[0].url))).status).toBe(404);
  expect(await readdir(path.join(server.dataDir, 'exports'))).not.toContain(id);
});

test('without Group among the aggregated types (the default), Group/[id]/$export is a 404 like GET Group/[id], the same for any id and caller, and no job', async () => {
  // A Group on A's own endpoint changes nothing: Group is not aggregated unless AGGREGATED_TYPES says so.
  await put(a, { resourceType: 'Group', id: 'cohort', type: 'person', actual: true, member: [{ entity: { reference: 'Patient/pa' } }] });
  await server.waitForAggregation();
  const answers: string[] = [];
  for (const [caller, id] of [
    [a, 'cohort'],
    [a, 'no-such-group'],
    [b, 'cohort'],
  ] as const) {
    const res = await kickOff(caller, `Group/${id}/$export`);
    expect(res.status).toBe(404);
    expect(res.headers.get('content-location')).toBeNull();
    const outcome = (await res.json()) as Json;
    const read = (await (await server.aggregated(caller, `Group/${id}`)).json()) as Json;
    expect(outcome.issue).toEqual(read.issue);
    answers.push(outcome.issue[0].diagnostics);
  }
  expect(answers[0]).toContain('Group is not part of the aggregated record');
  expect(new Set(answers).size).toBe(1);
  const anonymous = await fetch(`${server.url}${AGG}Group/cohort/$export`, { headers: { prefer: 'respond-async' } });
  expect(anonymous.status).toBe(401);
});

test('NDJSON keeps decimals as they were sent: 72.50 and 1.0e0 (they were written through JSON.stringify as 72.5 and 1)', async () => {
  const observation = `{"resourceType":"Observation","id":"exact","status":"final","code":{"text":"exact"},"subject":{"reference":"Patient/pa"},
    "meta":{"security":[{"system":"${LABEL}","code":"GENERAL_HEALTH"}]},"component":[{"code":{"text":"a"},"valueQuantity":{"value":72.50}},{"code":{"text":"b"},"valueQuantity":{"value":1.0e0}}]}`;
  expect((await a.fetch('Observation/exact', { method: 'PUT', body: observation })).status).toBe(201);
  await server.waitForAggregation();
  const { manifest } = await exportAll(a, '$export?_type=Observation');
  const text = await (await server.aggregated(a, local(manifest.output[0].url))).text();
  const line = text.split('\n').find((l) => l.includes('"exact"')) as string;
  expect([...line.matchAll(/"value":([^,}]+)/g)].map((m) => m[1])).toEqual(['72.50', '1.0e0']);
});
