import { startTestServer, type Tenant, type TestServer } from '../support/testServer';

let server: TestServer;
let tenant: Tenant;

beforeAll(async () => {
  server = await startTestServer();
  tenant = await server.provision();
});
afterAll(() => server.close());

const patient = { resourceType: 'Patient', name: [{ family: 'Smith', given: ['Ann'] }], gender: 'female' };

async function json(res: Response): Promise<Record<string, any>> {
  return (await res.json()) as Record<string, any>;
}

async function create(body: unknown = patient): Promise<{ id: string; res: Response; body: Record<string, any> }> {
  const res = await tenant.fetch('Patient', { method: 'POST', body: JSON.stringify(body) });
  const b = await json(res);
  return { id: b.id, res, body: b };
}

describe('customer endpoint: create, read, update, vread, history, patch, delete', () => {
  test('create answers 201 with Location, ETag, Last-Modified and the stored resource', async () => {
    const { res, body, id } = await create();
    expect(res.status).toBe(201);
    expect(res.headers.get('location')).toBe(`${tenant.baseUrl}/Patient/${id}/_history/1`);
    expect(res.headers.get('etag')).toBe('W/"1"');
    expect(new Date(res.headers.get('last-modified') as string).getTime()).not.toBeNaN();
    expect(res.headers.get('content-type')).toMatch(/^application\/fhir\+json/);
    expect(body).toMatchObject({ ...patient, id, meta: { versionId: '1' } });
  });

  test('a client-supplied id on create is replaced by the server id', async () => {
    const { body } = await create({ ...patient, id: 'mine' });
    expect(body.id).not.toBe('mine');
  });

  test('read returns the resource with its version headers', async () => {
    const { id } = await create();
    const res = await tenant.fetch(`Patient/${id}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('etag')).toBe('W/"1"');
    expect((await json(res)).name).toEqual(patient.name);
  });

  test('update makes version 2; vread still returns version 1', async () => {
    const { id } = await create();
    const res = await tenant.fetch(`Patient/${id}`, { method: 'PUT', body: JSON.stringify({ ...patient, id, gender: 'other' }) });
    expect(res.status).toBe(200);
    expect(res.headers.get('etag')).toBe('W/"2"');
    expect((await json(await tenant.fetch(`Patient/${id}/_history/1`))).gender).toBe('female');
    expect((await json(await tenant.fetch(`Patient/${id}/_history/2`))).gender).toBe('other');
  });

  test('PUT to a new id creates it there (201)', async () => {
    const res = await tenant.fetch('Patient/client-chosen-1', { method: 'PUT', body: JSON.stringify({ ...patient, id: 'client-chosen-1' }) });
    expect(res.status).toBe(201);
    expect(res.headers.get('location')).toBe(`${tenant.baseUrl}/Patient/client-chosen-1/_history/1`);
  });

  test('If-Match with the current version succeeds; a stale one is 412 and changes nothing', async () => {
    const { id } = await create();
    const ok = await tenant.fetch(`Patient/${id}`, { method: 'PUT', headers: { 'if-match': 'W/"1"' }, body: JSON.stringify({ ...patient, id, gender: 'male' }) });
    expect(ok.status).toBe(200);
    const stale = await tenant.fetch(`Patient/${id}`, { method: 'PUT', headers: { 'if-match': 'W/"1"' }, body: JSON.stringify({ ...patient, id, gender: 'other' }) });
    expect(stale.status).toBe(412);
    expect((await json(stale)).resourceType).toBe('OperationOutcome');
    expect((await json(await tenant.fetch(`Patient/${id}`))).gender).toBe('male');
  });

  test('history lists every version newest first', async () => {
    const { id } = await create();
    await tenant.fetch(`Patient/${id}`, { method: 'PUT', body: JSON.stringify({ ...patient, id, gender: 'male' }) });
    await tenant.fetch(`Patient/${id}`, { method: 'DELETE' });
    const bundle = await json(await tenant.fetch(`Patient/${id}/_history`));
    expect(bundle).toMatchObject({ resourceType: 'Bundle', type: 'history' });
    expect(bundle.entry.map((e: any) => [e.request.method, e.response.etag])).toEqual([
      ['DELETE', 'W/"3"'],
      ['PUT', 'W/"2"'],
      ['POST', 'W/"1"'],
    ]);
  });

  test('type and endpoint history page with next links', async () => {
    const t2 = await server.provision();
    for (let i = 0; i < 5; i++) await t2.fetch('Observation', { method: 'POST', body: JSON.stringify({ resourceType: 'Observation', status: 'final', code: { text: `o${i}` } }) });
    const seen: string[] = [];
    let next: string | undefined = 'Observation/_history?_count=2';
    while (next) {
      const page = await json(await t2.fetch(next));
      seen.push(...page.entry.map((e: any) => e.resource.code.text));
      next = page.link.find((l: any) => l.relation === 'next')?.url;
    }
    expect(seen).toEqual(['o4', 'o3', 'o2', 'o1', 'o0']);
    const all = await json(await t2.fetch('_history'));
    expect(all.entry).toHaveLength(5);
  });

  test('PATCH with JSON Patch makes a new version', async () => {
    const { id } = await create();
    const res = await tenant.fetch(`Patient/${id}`, {
      method: 'PATCH',
      headers: { 'content-type': 'application/json-patch+json' },
      body: JSON.stringify([
        { op: 'replace', path: '/gender', value: 'unknown' },
        { op: 'add', path: '/birthDate', value: '1970-01-01' },
      ]),
    });
    expect(res.status).toBe(200);
    expect(await json(res)).toMatchObject({ id, gender: 'unknown', birthDate: '1970-01-01', meta: { versionId: '2' } });
  });

  test('a PATCH that makes the resource invalid is refused and changes nothing', async () => {
    const { id } = await create();
    const res = await tenant.fetch(`Patient/${id}`, {
      method: 'PATCH',
      headers: { 'content-type': 'application/json-patch+json' },
      body: JSON.stringify([{ op: 'replace', path: '/gender', value: 'robot' }]),
    });
    expect(res.status).toBe(400);
    expect((await json(await tenant.fetch(`Patient/${id}`))).meta.versionId).toBe('1');
  });

  test('delete answers 204; read is then 410 Gone and vread of the old version still works', async () => {
    const { id } = await create();
    expect((await tenant.fetch(`Patient/${id}`, { method: 'DELETE' })).status).toBe(204);
    const gone = await tenant.fetch(`Patient/${id}`);
    expect(gone.status).toBe(410);
    expect((await json(gone)).issue[0].code).toBe('deleted');
    expect((await tenant.fetch(`Patient/${id}/_history/1`)).status).toBe(200);
  });

  test('Prefer: return=minimal gives no body; return=OperationOutcome gives an outcome', async () => {
    const minimal = await tenant.fetch('Patient', { method: 'POST', headers: { prefer: 'return=minimal' }, body: JSON.stringify(patient) });
    expect(minimal.status).toBe(201);
    expect(await minimal.text()).toBe('');
    const outcome = await tenant.fetch('Patient', { method: 'POST', headers: { prefer: 'return=OperationOutcome' }, body: JSON.stringify(patient) });
    expect((await json(outcome)).resourceType).toBe('OperationOutcome');
  });

  test('conditional read: If-None-Match with the current ETag is 304', async () => {
    const { id } = await create();
    expect((await tenant.fetch(`Patient/${id}`, { headers: { 'if-none-match': 'W/"1"' } })).status).toBe(304);
    expect((await tenant.fetch(`Patient/${id}`, { headers: { 'if-none-match': 'W/"0"' } })).status).toBe(200);
  });

  test('_format and Accept select application/json; RDF is 406', async () => {
    const { id } = await create();
    expect((await tenant.fetch(`Patient/${id}?_format=application/json`)).headers.get('content-type')).toMatch(/^application\/json/);
    expect((await tenant.fetch(`Patient/${id}`, { headers: { accept: 'application/json' } })).headers.get('content-type')).toMatch(/^application\/json/);
    expect((await tenant.fetch(`Patient/${id}`, { headers: { accept: 'text/turtle' } })).status).toBe(406);
    expect((await tenant.fetch(`Patient/${id}?_format=ttl`)).status).toBe(406);
  });

  test('/metadata is a CapabilityStatement listing Patient with its interactions', async () => {
    const cs = await json(await tenant.fetch('metadata'));
    expect(cs.resourceType).toBe('CapabilityStatement');
    expect(cs.fhirVersion).toBe('4.0.1');
    const p = cs.rest[0].resource.find((r: any) => r.type === 'Patient');
    expect(p.interaction.map((i: any) => i.code)).toEqual(expect.arrayContaining(['read', 'vread', 'update', 'patch', 'delete', 'create', 'history-instance']));
  });
});

describe('indexing every resource type', () => {
  test('a MolecularSequence whose composite parameters start at %resource is stored and searchable', async () => {
    const body = {
      resourceType: 'MolecularSequence',
      coordinateSystem: 0,
      // msq-5/msq-6: a chromosome comes with its genome build.
      referenceSeq: { chromosome: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/chromosome-human', code: '1' }] }, genomeBuild: 'GRCh38' },
      variant: [{ start: 100, end: 101, observedAllele: 'A', referenceAllele: 'G' }],
    };
    const res = await tenant.fetch('MolecularSequence', { method: 'POST', body: JSON.stringify(body) });
    expect(res.status).toBe(201);
    const { id } = await json(res);
    const found = await json(await tenant.fetch('MolecularSequence?chromosome=1'));
    expect(found.entry.map((e: { resource: { id: string } }) => e.resource.id)).toEqual([id]);
  });
});
