import { startTestServer, type Tenant, type TestServer } from '../support/testServer';

/**
 * Issue 16 item 9: races, tried as many clients at once would, through the real HTTP server on PostgreSQL
 * (PGlite is one connection and cannot race). Conditional creates, If-Match updates, one patient from two
 * feeds at once, and transactions that change one resource together must each leave one consistent answer.
 */
const NHS = 'https://fhir.nhs.uk/Id/nhs-number';
const patient = (nhs: string, extra: Record<string, unknown> = {}) => ({
  resourceType: 'Patient',
  identifier: [{ system: NHS, value: nhs }],
  name: [{ family: 'Race' }],
  ...extra,
});

describe('races', () => {
  let server: TestServer;
  let tenant: Tenant;
  beforeAll(async () => {
    // Every race is one client's burst: past the per-client limit (CLIENT_MAX_CONCURRENT, 16) it would get 429s.
    server = await startTestServer({ DATABASE_POOL_SIZE: '8', CLIENT_MAX_CONCURRENT: '200' });
    tenant = await server.provision({ name: 'Race A', defaultSourceOrg: 'Organization/race-a' });
  }, 60_000);
  afterAll(async () => server?.close());

  const count = async (query: string) => ((await (await tenant.fetch(`${query}&_total=accurate&_count=0`)).json()) as { total: number }).total;

  test('64 parallel identical conditional creates make exactly one resource; every answer names it', async () => {
    const responses = await Promise.all(
      Array.from({ length: 64 }, () =>
        tenant.fetch('Patient', { method: 'POST', headers: { 'if-none-exist': `identifier=${NHS}|9100000001` }, body: JSON.stringify(patient('9100000001')) }),
      ),
    );
    const statuses = responses.map((r) => r.status);
    expect(statuses.filter((s) => s === 201)).toHaveLength(1);
    expect(statuses.filter((s) => s === 200)).toHaveLength(63);
    const ids = new Set(await Promise.all(responses.map(async (r) => ((await r.json()) as { id: string }).id)));
    expect(ids.size).toBe(1);
    expect(await count(`Patient?identifier=${NHS}|9100000001`)).toBe(1);
  });

  test('64 parallel transaction Bundles with the same ifNoneExist make exactly one resource', async () => {
    const bundle = {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [{ fullUrl: 'urn:uuid:p', request: { method: 'POST', url: 'Patient', ifNoneExist: `identifier=${NHS}|9100000002` }, resource: patient('9100000002') }],
    };
    const responses = await Promise.all(Array.from({ length: 64 }, () => tenant.fetch('', { method: 'POST', body: JSON.stringify(bundle) })));
    expect(responses.map((r) => r.status).every((s) => s === 200)).toBe(true);
    const created = await Promise.all(responses.map(async (r) => ((await r.json()) as { entry: { response: { status: string } }[] }).entry[0].response.status));
    expect(created.filter((s) => s.startsWith('201'))).toHaveLength(1);
    expect(await count(`Patient?identifier=${NHS}|9100000002`)).toBe(1);
  });

  test('32 parallel PUTs with the same If-Match: exactly one succeeds, the other 31 get 412, and the version moves by one', async () => {
    const created = (await (await tenant.fetch('Patient', { method: 'POST', body: JSON.stringify(patient('9100000003')) })).json()) as { id: string };
    const responses = await Promise.all(
      Array.from({ length: 32 }, (_, i) =>
        tenant.fetch(`Patient/${created.id}`, {
          method: 'PUT',
          headers: { 'if-match': 'W/"1"' },
          body: JSON.stringify(patient('9100000003', { id: created.id, gender: i % 2 ? 'male' : 'female' })),
        }),
      ),
    );
    const statuses = responses.map((r) => r.status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(1);
    expect(statuses.filter((s) => s === 412)).toHaveLength(31);
    const now = (await (await tenant.fetch(`Patient/${created.id}`)).json()) as { meta: { versionId: string } };
    expect(now.meta.versionId).toBe('2');
  });

  test('parallel transactions patching one resource lose no update: every one commits and each change is there', async () => {
    const created = (await (await tenant.fetch('Patient', { method: 'POST', body: JSON.stringify(patient('9100000004')) })).json()) as { id: string };
    const n = 16;
    const patchEntry = (i: number) => ({
      request: { method: 'PATCH', url: `Patient/${created.id}` },
      resource: {
        resourceType: 'Binary',
        contentType: 'application/json-patch+json',
        data: Buffer.from(JSON.stringify([{ op: 'add', path: '/identifier/-', value: { system: 'urn:race', value: `t${i}` } }])).toString('base64'),
      },
    });
    const responses = await Promise.all(
      Array.from({ length: n }, (_, i) => tenant.fetch('', { method: 'POST', body: JSON.stringify({ resourceType: 'Bundle', type: 'transaction', entry: [patchEntry(i)] }) })),
    );
    expect(responses.map((r) => r.status)).toEqual(Array(n).fill(200));
    const now = (await (await tenant.fetch(`Patient/${created.id}`)).json()) as { meta: { versionId: string }; identifier: { value: string }[] };
    expect(now.meta.versionId).toBe(String(n + 1));
    expect(now.identifier.map((i) => i.value).sort()).toEqual(['9100000004', ...Array.from({ length: n }, (_, i) => `t${i}`)].sort());
  });

  test('the same patient posted at once to two endpoints ends as one aggregated group', async () => {
    const other = await server.provision({ name: 'Race B', defaultSourceOrg: 'Organization/race-b' });
    const numbers = Array.from({ length: 8 }, (_, i) => `92000000${String(i).padStart(2, '0')}`);
    const posts = numbers.flatMap((nhs) => [tenant, other].map((t) => t.fetch('Patient', { method: 'POST', body: JSON.stringify(patient(nhs)) })));
    expect((await Promise.all(posts)).map((r) => r.status)).toEqual(Array(posts.length).fill(201));
    await server.waitForAggregation();
    for (const nhs of numbers) {
      const found = (await (await server.aggregated(tenant, `Patient?identifier=${NHS}|${nhs}`)).json()) as { entry?: { resource: { id: string } }[] };
      expect(found.entry).toHaveLength(1);
    }
  });
});
