import { randomUUID } from 'node:crypto';
import { aggregatedId, putResource as put, startTestServer, type Tenant, type TestServer } from '../support/testServer';

/**
 * Bulk Data kick-off by POST with a FHIR Parameters body (bulkdata export.html#bulk-data-kick-off-request),
 * at system, Patient and Group level (Group aggregated: AGGREGATED_TYPES=+Group), and its `patient`
 * parameter: the export holds only those patients' compartments; a patient the caller cannot see is refused
 * exactly as one that does not exist. GET keeps its query parameters; `patient` is POST's alone.
 */
const NHS = 'https://fhir.nhs.uk/Id/nhs-number';
const LABEL = 'http://fhir.patientsknowbest.com/codesystem/privacy-label';
const AGG = '/fhir/aggregated/';

type Json = Record<string, any>;
let server: TestServer;
let a: Tenant;
let b: Tenant;
/** Aggregated ids: A's patients pa, pa2, pa3 (pa3 not in A's Group), B's pb (only B knows it), A's Group. */
const ids: Record<string, string> = {};

const local = (url: string) => url.slice(url.indexOf(AGG) + AGG.length);
const parameters = (...parameter: Json[]) => ({ resourceType: 'Parameters', parameter });
const patientParam = (id: string) => ({ name: 'patient', valueReference: { reference: `Patient/${id}` } });
/** A POST kick-off with `body` (JSON-serialised unless a string), as a client sends it. */
const post = (t: Tenant, p: string, body: unknown, headers: Record<string, string> = {}) =>
  server.aggregated(t, p, {
    method: 'POST',
    body: typeof body === 'string' ? body : JSON.stringify(body),
    headers: { prefer: 'respond-async', accept: 'application/fhir+json', ...headers },
  });

/** Polls a kick-off's job to the end; answers the manifest and every file's resources by type. */
async function finished(t: Tenant, kick: Response): Promise<{ manifest: Json; files: Record<string, Json[]> }> {
  if (kick.status !== 202) throw new Error(`kick-off: ${kick.status} ${await kick.text()}`);
  const statusUrl = local(kick.headers.get('content-location') as string);
  for (let i = 0; i < 600; i++) {
    const status = await server.aggregated(t, statusUrl);
    if (status.status === 200) {
      const manifest = (await status.json()) as Json;
      const files: Record<string, Json[]> = {};
      for (const o of manifest.output) {
        const res = await server.aggregated(t, local(o.url));
        expect(res.headers.get('content-type')).toContain('application/fhir+ndjson');
        files[o.type] = (await res.text())
          .split('\n')
          .filter((l) => l !== '')
          .map((l) => JSON.parse(l) as Json);
        expect(files[o.type]).toHaveLength(o.count);
      }
      return { manifest, files };
    }
    if (status.status !== 202) throw new Error(`status: ${status.status} ${await status.text()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('the export did not finish');
}
const texts = (rows: Json[] | undefined) => (rows ?? []).map((r) => r.code.text).sort();
/** How many jobs exist: a refused kick-off must start none. */
const jobCount = async () => Number((await server.database.db.sql.query<{ n: string }[]>('SELECT count(*)::text AS n FROM bulk_export_job'))[0].n);

beforeAll(async () => {
  server = await startTestServer({ AGGREGATED_TYPES: '+Group' });
  a = await server.provision({ name: 'Trust A', defaultSourceOrg: 'Organization/orgA' });
  b = await server.provision({ name: 'Trust B', defaultSourceOrg: 'Organization/orgB' });
  await put(a, { resourceType: 'Organization', id: 'orgA', identifier: [{ system: 'urn:ods', value: 'AAA' }] });
  await put(b, { resourceType: 'Organization', id: 'orgB', identifier: [{ system: 'urn:ods', value: 'BBB' }] });
  for (const [t, id, nhs] of [
    [a, 'pa', '9100000001'],
    [a, 'pa2', '9100000002'],
    [a, 'pa3', '9100000003'],
    [b, 'pb', '9100000004'],
  ] as const) {
    await put(t, {
      resourceType: 'Patient',
      id,
      identifier: [{ system: NHS, value: nhs }],
      managingOrganization: { reference: t === a ? 'Organization/orgA' : 'Organization/orgB' },
    });
    await put(t, {
      resourceType: 'Observation',
      id: `obs-${id}`,
      status: 'final',
      code: { text: `obs-${id}` },
      subject: { reference: `Patient/${id}` },
      meta: { security: [{ system: LABEL, code: 'GENERAL_HEALTH' }] },
    });
  }
  await put(a, {
    resourceType: 'Group',
    id: 'cohort',
    type: 'person',
    actual: true,
    member: [{ entity: { reference: 'Patient/pa' } }, { entity: { reference: 'Patient/pa2' } }],
  });
  await server.waitForAggregation();
  for (const id of ['pa', 'pa2', 'pa3']) ids[id] = await aggregatedId(a, 'Patient', id);
  ids.pb = await aggregatedId(b, 'Patient', 'pb');
  ids.cohort = await aggregatedId(a, 'Group', 'cohort');
}, 120_000);
afterAll(() => server.close());

test('POST $export with a Parameters body exports what the same GET does, and its manifest names the kick-off URL', async () => {
  const filter = 'Observation?code:text=obs-pa2';
  const byPost = await finished(
    a,
    await post(
      a,
      '$export',
      parameters({ name: '_type', valueString: 'Observation,Patient' }, { name: '_typeFilter', valueString: filter }, { name: '_outputFormat', valueString: 'ndjson' }),
    ),
  );
  const byGet = await finished(
    a,
    await server.aggregated(a, `$export?_type=Observation,Patient&_typeFilter=${encodeURIComponent(filter)}`, { headers: { prefer: 'respond-async' } }),
  );
  expect(texts(byPost.files.Observation)).toEqual(['obs-pa2']);
  expect(byPost.files.Patient.map((p) => p.id).sort()).toEqual([ids.pa, ids.pa2, ids.pa3].sort());
  expect(byPost.files).toEqual(byGet.files);
  expect(byPost.manifest.request).toMatch(/\/fhir\/aggregated\/\$export$/);
  expect(byPost.manifest.requiresAccessToken).toBe(true);
  // _since as a valueInstant, and _type repeated (the IG: as if comma-delimited in one).
  const future = new Date(Date.now() + 3_600_000).toISOString();
  const none = await finished(a, await post(a, '$export', parameters({ name: '_type', valueString: 'Observation' }, { name: '_since', valueInstant: future })));
  expect(none.manifest.output).toEqual([]);
  const two = await finished(a, await post(a, '$export', parameters({ name: '_type', valueString: 'Observation' }, { name: '_type', valueString: 'Group' })));
  expect(Object.keys(two.files).sort()).toEqual(['Group', 'Observation']);
});

test('POST Patient/$export with patient holds only those patients’ compartments', async () => {
  const one = await finished(a, await post(a, 'Patient/$export', parameters(patientParam(ids.pa2))));
  expect(Object.keys(one.files).sort()).toEqual(['Observation', 'Patient']);
  expect(one.files.Patient.map((p) => p.id)).toEqual([ids.pa2]);
  expect(texts(one.files.Observation)).toEqual(['obs-pa2']);
  // Two patients, one as an absolute reference to this server (its base as its URLs name it), one named twice.
  const location = (await post(a, 'Patient/$export', parameters(patientParam(ids.pa)))).headers.get('content-location') as string;
  const base = location.slice(0, location.indexOf('/$export-status/'));
  const two = await finished(
    a,
    await post(
      a,
      'Patient/$export',
      parameters(patientParam(ids.pa), { name: 'patient', valueReference: { reference: `${base}/Patient/${ids.pa3}` } }, patientParam(ids.pa), {
        name: '_type',
        valueString: 'Observation',
      }),
    ),
  );
  expect(Object.keys(two.files)).toEqual(['Observation']);
  expect(texts(two.files.Observation)).toEqual(['obs-pa', 'obs-pa3']);
  // The same body in XML.
  const xml = `<Parameters xmlns="http://hl7.org/fhir"><parameter><name value="patient"/><valueReference><reference value="Patient/${ids.pa2}"/></valueReference></parameter><parameter><name value="_type"/><valueString value="Observation"/></parameter></Parameters>`;
  const fromXml = await finished(a, await post(a, 'Patient/$export', xml, { 'content-type': 'application/fhir+xml' }));
  expect(texts(fromXml.files.Observation)).toEqual(['obs-pa2']);
  // Without patient, every compartment the caller may see.
  const all = await finished(a, await post(a, 'Patient/$export', parameters()));
  expect(texts(all.files.Observation)).toEqual(['obs-pa', 'obs-pa2', 'obs-pa3']);
});

test('POST Group/[id]/$export with patient holds only those members; a patient who is not a member is a 400', async () => {
  const whole = await finished(a, await post(a, `Group/${ids.cohort}/$export`, parameters()));
  expect(texts(whole.files.Observation)).toEqual(['obs-pa', 'obs-pa2']);
  const one = await finished(a, await post(a, `Group/${ids.cohort}/$export`, parameters(patientParam(ids.pa))));
  expect(Object.keys(one.files).sort()).toEqual(['Group', 'Observation', 'Patient']);
  expect(one.files.Patient.map((p) => p.id)).toEqual([ids.pa]);
  expect(texts(one.files.Observation)).toEqual(['obs-pa']);
  expect(one.files.Group.map((g) => g.id)).toEqual([ids.cohort]);
  const jobs = await jobCount();
  const outside = await post(a, `Group/${ids.cohort}/$export`, parameters(patientParam(ids.pa), patientParam(ids.pa3)));
  expect(outside.status).toBe(400);
  const outcome = (await outside.json()) as Json;
  expect(outcome.issue[0].diagnostics).toBe(`patient 'Patient/${ids.pa3}' is not a member of Group/${ids.cohort} now`);
  expect(outcome.issue[0].expression).toEqual(['patient']);
  expect(await jobCount()).toBe(jobs);
});

test('a patient the caller cannot see is refused exactly as one that does not exist (400), and starts no job', async () => {
  const jobs = await jobCount();
  const ghost = randomUUID();
  for (const level of ['Patient/$export', `Group/${ids.cohort}/$export`]) {
    // B's pb at Patient level; at Group level the check of membership comes first, and pb is no member either.
    const [hidden, unknown] = [await post(a, level, parameters(patientParam(ids.pb))), await post(a, level, parameters(patientParam(ghost)))];
    expect([hidden.status, unknown.status]).toEqual([400, 400]);
    expect(hidden.headers.get('content-location')).toBeNull();
    const [h, u] = [(await hidden.text()).split(ids.pb).join('<id>'), (await unknown.text()).split(ghost).join('<id>')];
    expect(h).toBe(u);
  }
  expect(await jobCount()).toBe(jobs);
  // B, who knows pb, exports it.
  const own = await finished(b, await post(b, 'Patient/$export', parameters(patientParam(ids.pb))));
  expect(texts(own.files.Observation)).toEqual(['obs-pb']);
});

test('bad bodies and parameters are a 400 naming what is wrong, before any job exists', async () => {
  const jobs = await jobCount();
  const strict = { prefer: 'respond-async, handling=strict' };
  const cases: [string, unknown, string, Record<string, string>?][] = [
    ['$export', { resourceType: 'Patient' }, 'Parameters'],
    ['$export', '_type=Patient', 'Parameters', { 'content-type': 'application/x-www-form-urlencoded' }],
    ['Patient/$export', parameters({ name: 'patient', valueString: `Patient/${ids.pa}` }), 'patient'],
    ['Patient/$export', parameters({ name: 'patient', valueReference: { reference: 'Observation/obs-pa' } }), 'patient'],
    ['Patient/$export', parameters({ name: 'patient', valueReference: { reference: 'https://elsewhere.example/fhir/Patient/x' } }), 'patient'],
    ['$export', parameters(patientParam(ids.pa)), 'patient'],
    ['$export', parameters({ name: '_type', valueString: 'Banana' }), '_type'],
    ['$export', parameters({ name: '_since', valueString: 'yesterday' }), '_since'],
    ['$export', parameters({ name: '_type', valueCodeableConcept: { text: 'Patient' } }), '_type'],
    ['$export', parameters({ name: 'colour', valueString: 'blue' }), 'colour', strict],
    ['$export', parameters({ name: '_elements', valueString: 'id' }), '_elements', strict],
  ];
  for (const [level, body, name, headers] of cases) {
    const res = await post(a, level, body, headers);
    const outcome = (await res.json()) as Json;
    expect({ level, body, status: res.status, named: JSON.stringify(outcome.issue).includes(name) }).toEqual({ level, body, status: 400, named: true });
  }
  // A POST takes its parameters from the body alone.
  const inUrl = await post(a, '$export?_type=Patient', parameters());
  expect(inUrl.status).toBe(400);
  expect(((await inUrl.json()) as Json).issue[0].expression).toEqual(['_type']);
  expect(await jobCount()).toBe(jobs);
  // Lenient (the default): an unknown or unsupported parameter is ignored.
  const lenient = await finished(
    a,
    await post(a, '$export', parameters({ name: 'colour', valueString: 'blue' }, { name: '_elements', valueString: 'id' }, { name: '_type', valueString: 'Group' })),
  );
  expect(Object.keys(lenient.files)).toEqual(['Group']);
});

test('GET: patient is a 400 (POST only); an unknown parameter is a 400 under handling=strict and ignored otherwise', async () => {
  const withPatient = await server.aggregated(a, `Patient/$export?patient=Patient/${ids.pa}`, { headers: { prefer: 'respond-async' } });
  expect(withPatient.status).toBe(400);
  expect(((await withPatient.json()) as Json).issue[0].expression).toEqual(['patient']);
  const strict = await server.aggregated(a, '$export?_type=Group&colour=blue', { headers: { prefer: 'respond-async, handling=strict' } });
  expect(strict.status).toBe(400);
  expect(((await strict.json()) as Json).issue[0].expression).toEqual(['colour']);
  const lenient = await finished(a, await server.aggregated(a, '$export?_type=Group&colour=blue', { headers: { prefer: 'respond-async' } }));
  expect(Object.keys(lenient.files)).toEqual(['Group']);
});

test('tokens: patient needs read on Patient (403 without); a patient-scoped token may name its own patient, another is unknown', async () => {
  const as = (subject: { scopes: string[]; patientId?: string }): Tenant =>
    ({ ...a, token: server.tokens.issue('fhir', { clientId: a.clientId, customerId: a.customerId, ...subject }).access_token }) as Tenant;
  const noPatientRead = await post(
    as({ scopes: ['system/Observation.rs', 'system/Patient.s'] }),
    'Patient/$export',
    parameters(patientParam(ids.pa), { name: '_type', valueString: 'Observation' }),
  );
  expect(noPatientRead.status).toBe(403);
  expect(noPatientRead.headers.get('www-authenticate')).toContain('insufficient_scope');
  const self = as({ scopes: ['patient/*.rs'], patientId: ids.pa });
  const own = await finished(self, await post(self, 'Patient/$export', parameters(patientParam(ids.pa), { name: '_type', valueString: 'Observation' })));
  expect(texts(own.files.Observation)).toEqual(['obs-pa']);
  const [other, ghost] = [await post(self, 'Patient/$export', parameters(patientParam(ids.pa2))), await post(self, 'Patient/$export', parameters(patientParam('no-such-patient')))];
  expect([other.status, ghost.status]).toEqual([400, 400]);
  expect((await other.text()).split(ids.pa2).join('<id>')).toBe((await ghost.text()).split('no-such-patient').join('<id>'));
});

test('the POST kick-off is the Bulk Data one: Prefer: respond-async is needed, and Group/[id] needs the Group readable', async () => {
  const noPrefer = await server.aggregated(a, 'Patient/$export', { method: 'POST', body: JSON.stringify(parameters()) });
  expect(noPrefer.status).toBe(400);
  expect(await noPrefer.text()).toContain('respond-async');
  const [hidden, unknown] = [await post(b, `Group/${ids.cohort}/$export`, parameters()), await post(b, 'Group/no-such-group/$export', parameters())];
  expect([hidden.status, unknown.status]).toEqual([404, 404]);
});
