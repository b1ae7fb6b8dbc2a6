import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { startTestServer, type Tenant, type TestServer } from '../support/testServer';

const SYNTHEA = path.resolve(__dirname, '../../../shared/data/synthea-r4');
const haveSynthea = (() => {
  try {
    return readdirSync(SYNTHEA).some((f) => f.endsWith('.json'));
  } catch {
    return false;
  }
})();

let server: TestServer;
let t: Tenant;
beforeAll(async () => {
  server = await startTestServer();
  t = await server.provision();
});
afterAll(() => server.close());

type Json = Record<string, any>;
async function post(body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: Json }> {
  const res = await t.fetch('', { method: 'POST', body: JSON.stringify(body), headers });
  return { status: res.status, body: (await res.json()) as Json };
}
async function total(query: string): Promise<number> {
  const res = await t.fetch(`${query}${query.includes('?') ? '&' : '?'}_total=accurate&_count=0`);
  return ((await res.json()) as Json).total;
}

const NHS = 'https://fhir.nhs.uk/Id/nhs-number';

(haveSynthea ? test : test.skip)('a Synthea patient bundle posts as one transaction and reads and searches back with its references rewritten', async () => {
  const file = readdirSync(SYNTHEA)
    .filter((f) => f.endsWith('.json'))
    .sort()[0];
  const bundle = JSON.parse(readFileSync(path.join(SYNTHEA, file), 'utf8'));
  const { status, body } = await post(bundle);
  expect(status).toBe(200);
  expect(body.type).toBe('transaction-response');
  expect(body.entry).toHaveLength(bundle.entry.length);
  expect(body.entry.every((e: Json) => e.response.status === '201 Created' && /^[A-Za-z]+\/[^/]+\/_history\/1$/.test(e.response.location))).toBe(true);

  const patientIndex = bundle.entry.findIndex((e: Json) => e.resource.resourceType === 'Patient');
  const patientId = body.entry[patientIndex].response.location.split('/')[1];
  const observations = bundle.entry.filter((e: Json) => e.resource.resourceType === 'Observation').length;
  expect(await total(`Observation?subject=Patient/${patientId}`)).toBe(observations);
  const read = await t.fetch(`Patient/${patientId}`);
  expect(read.status).toBe(200);
  const obs = (await (await t.fetch(`Observation?subject=Patient/${patientId}&_count=1`)).json()) as Json;
  expect(obs.entry[0].resource.subject.reference).toBe(`Patient/${patientId}`);
  expect(JSON.stringify(obs.entry[0].resource)).not.toContain('urn:uuid:');
});

describe('transaction', () => {
  test('placeholders are resolved across entries, in any order', async () => {
    const { status, body } = await post({
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        {
          fullUrl: 'urn:uuid:aaaaaaaa-0000-4000-8000-000000000001',
          resource: { resourceType: 'Observation', status: 'final', code: { text: 'placeholder-test' }, subject: { reference: 'urn:uuid:aaaaaaaa-0000-4000-8000-000000000002' } },
          request: { method: 'POST', url: 'Observation' },
        },
        {
          fullUrl: 'urn:uuid:aaaaaaaa-0000-4000-8000-000000000002',
          resource: { resourceType: 'Patient', identifier: [{ system: NHS, value: 'tx-1' }] },
          request: { method: 'POST', url: 'Patient' },
        },
        { request: { method: 'GET', url: `Patient?identifier=${NHS}|tx-1` } },
      ],
    });
    expect(status).toBe(200);
    const patientId = body.entry[1].response.location.split('/')[1];
    const obsId = body.entry[0].response.location.split('/')[1];
    const obs = (await (await t.fetch(`Observation/${obsId}`)).json()) as Json;
    expect(obs.subject.reference).toBe(`Patient/${patientId}`);
    // GET entries run last, so they see the transaction's own writes.
    expect(body.entry[2].response.status).toBe('200 OK');
  });

  test('one bad entry leaves the store unchanged and the outcome names the entry', async () => {
    const before = await total('Patient');
    const { status, body } = await post({
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        {
          fullUrl: 'urn:uuid:bbbbbbbb-0000-4000-8000-000000000001',
          resource: { resourceType: 'Patient', name: [{ family: 'Rollback' }] },
          request: { method: 'POST', url: 'Patient' },
        },
        { fullUrl: 'urn:uuid:bbbbbbbb-0000-4000-8000-000000000002', resource: { resourceType: 'Patient', gender: 'not-a-gender' }, request: { method: 'POST', url: 'Patient' } },
      ],
    });
    expect(status).toBe(400);
    expect(body.resourceType).toBe('OperationOutcome');
    const text = JSON.stringify(body);
    expect(text).toContain('Bundle.entry[1]');
    expect(text).toContain('urn:uuid:bbbbbbbb-0000-4000-8000-000000000002');
    expect(text).toContain('gender');
    expect(await total('Patient')).toBe(before);
    expect(await total('Patient?name=rollback')).toBe(0);
  });

  test('conditional references and ifNoneExist are resolved inside the transaction', async () => {
    await t.fetch('Patient', { method: 'POST', body: JSON.stringify({ resourceType: 'Patient', identifier: [{ system: NHS, value: 'cond-1' }] }) });
    const { status, body } = await post({
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        {
          fullUrl: 'urn:uuid:cccccccc-0000-4000-8000-000000000001',
          resource: { resourceType: 'Patient', identifier: [{ system: NHS, value: 'cond-1' }] },
          request: { method: 'POST', url: 'Patient', ifNoneExist: `identifier=${NHS}|cond-1` },
        },
        {
          resource: { resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference: `Patient?identifier=${NHS}|cond-1` } },
          request: { method: 'POST', url: 'Observation' },
        },
      ],
    });
    expect(status).toBe(200);
    expect(body.entry[0].response.status).toBe('200 OK');
    const patientId = body.entry[0].response.location.split('/')[1];
    const obs = (await (await t.fetch(body.entry[1].response.location.split('/_history')[0])).json()) as Json;
    expect(obs.subject.reference).toBe(`Patient/${patientId}`);
    expect(await total(`Patient?identifier=${NHS}|cond-1`)).toBe(1);
  });

  test('a conditional reference with no match fails the transaction', async () => {
    const { status, body } = await post({
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        {
          resource: { resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference: `Patient?identifier=${NHS}|nobody` } },
          request: { method: 'POST', url: 'Observation' },
        },
      ],
    });
    expect(status).toBe(404);
    expect(JSON.stringify(body)).toContain('Bundle.entry[0]');
  });

  test('a stale ifMatch is 412 and rolls back the other entries', async () => {
    await t.fetch('Patient/im1', { method: 'PUT', body: JSON.stringify({ resourceType: 'Patient', id: 'im1' }) });
    await t.fetch('Patient/im1', { method: 'PUT', body: JSON.stringify({ resourceType: 'Patient', id: 'im1', gender: 'male' }) });
    const { status } = await post({
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { resource: { resourceType: 'Patient', id: 'im2' }, request: { method: 'PUT', url: 'Patient/im2' } },
        { resource: { resourceType: 'Patient', id: 'im1', gender: 'female' }, request: { method: 'PUT', url: 'Patient/im1', ifMatch: 'W/"1"' } },
      ],
    });
    expect(status).toBe(412);
    expect((await t.fetch('Patient/im2')).status).toBe(404);
  });

  test('DELETE, PUT and PATCH entries; the response carries status, location, etag and lastModified', async () => {
    await t.fetch('Patient/d1', { method: 'PUT', body: JSON.stringify({ resourceType: 'Patient', id: 'd1' }) });
    await t.fetch('Patient/pa1', { method: 'PUT', body: JSON.stringify({ resourceType: 'Patient', id: 'pa1', gender: 'male' }) });
    const patch = Buffer.from(JSON.stringify([{ op: 'replace', path: '/gender', value: 'female' }])).toString('base64');
    const { status, body } = await post({
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { resource: { resourceType: 'Patient', id: 'u1', gender: 'other' }, request: { method: 'PUT', url: 'Patient/u1' } },
        { request: { method: 'DELETE', url: 'Patient/d1' } },
        { resource: { resourceType: 'Binary', contentType: 'application/json-patch+json', data: patch }, request: { method: 'PATCH', url: 'Patient/pa1' } },
      ],
    });
    expect(status).toBe(200);
    expect(body.entry[0].response).toMatchObject({ status: '201 Created', location: 'Patient/u1/_history/1', etag: 'W/"1"' });
    expect(body.entry[0].response.lastModified).toEqual(expect.any(String));
    expect(body.entry[1].response.status).toBe('204 No Content');
    expect(body.entry[2].response).toMatchObject({ status: '200 OK', etag: 'W/"2"' });
    expect((await t.fetch('Patient/d1')).status).toBe(410);
    expect(((await (await t.fetch('Patient/pa1')).json()) as Json).gender).toBe('female');
  });

  test('a collection Bundle is refused with a pointer to transactions', async () => {
    const { status, body } = await post({ resourceType: 'Bundle', type: 'collection', entry: [] });
    expect(status).toBe(400);
    expect(JSON.stringify(body)).toContain('transaction');
  });

  test('concurrent transactions updating the same resource both apply, one version each', async () => {
    await t.fetch('Patient/race', { method: 'PUT', body: JSON.stringify({ resourceType: 'Patient', id: 'race' }) });
    const tx = (gender: string) =>
      post({
        resourceType: 'Bundle',
        type: 'transaction',
        entry: [{ resource: { resourceType: 'Patient', id: 'race', gender }, request: { method: 'PUT', url: 'Patient/race' } }],
      });
    const results = await Promise.all([tx('male'), tx('female'), tx('other')]);
    expect(results.map((r) => r.status)).toEqual([200, 200, 200]);
    const versions = results.map((r) => r.body.entry[0].response.etag).sort();
    expect(versions).toEqual(['W/"2"', 'W/"3"', 'W/"4"']);
    const history = (await (await t.fetch('Patient/race/_history')).json()) as Json;
    expect(history.entry).toHaveLength(4);
  });
});

describe('batch', () => {
  test('entries succeed or fail on their own', async () => {
    const { status, body } = await post({
      resourceType: 'Bundle',
      type: 'batch',
      entry: [
        { resource: { resourceType: 'Patient', name: [{ family: 'BatchGood' }] }, request: { method: 'POST', url: 'Patient' } },
        { resource: { resourceType: 'Patient', gender: 'nope' }, request: { method: 'POST', url: 'Patient' } },
        { request: { method: 'GET', url: 'Patient/does-not-exist' } },
      ],
    });
    expect(status).toBe(200);
    expect(body.type).toBe('batch-response');
    expect(body.entry.map((e: Json) => e.response.status)).toEqual(['201 Created', '400', '404']);
    expect(body.entry[1].response.outcome.resourceType).toBe('OperationOutcome');
    expect(await total('Patient?name=batchgood')).toBe(1);
  });
});

test('a Bundle over the entry limit is 413', async () => {
  const small = await startTestServer({ BUNDLE_MAX_ENTRIES: '2' });
  try {
    const tenant = await small.provision();
    const entry = [1, 2, 3].map(() => ({ resource: { resourceType: 'Patient' }, request: { method: 'POST', url: 'Patient' } }));
    const res = await tenant.fetch('', { method: 'POST', body: JSON.stringify({ resourceType: 'Bundle', type: 'transaction', entry }) });
    expect(res.status).toBe(413);
  } finally {
    await small.close();
  }
});
