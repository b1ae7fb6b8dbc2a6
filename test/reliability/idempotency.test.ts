import { randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runAdminCli } from '../support/runCli';
import { startTestServer, type Tenant, type TestServer } from '../support/testServer';

/**
 * Issue 16 item 3: a write or Bundle sent again with the same Idempotency-Key gets the first response back
 * and writes nothing more, within the window; the same key on a different request is a 422; keys belong to
 * one client and endpoint; a failed request leaves its key unused.
 */
const NHS = 'https://fhir.nhs.uk/Id/nhs-number';
const patient = (nhs: string, extra: Record<string, unknown> = {}) => ({
  resourceType: 'Patient',
  identifier: [{ system: NHS, value: nhs }],
  name: [{ family: 'Retry' }],
  ...extra,
});
const transaction = (...nhs: string[]) => ({
  resourceType: 'Bundle',
  type: 'transaction',
  entry: nhs.map((n, i) => ({ fullUrl: `urn:uuid:${i}`, request: { method: 'POST', url: 'Patient' }, resource: patient(n) })),
});

describe('Idempotency-Key', () => {
  let server: TestServer;
  let tenant: Tenant;
  beforeAll(async () => {
    server = await startTestServer();
    tenant = await server.provision({ name: 'Retry', defaultSourceOrg: 'Organization/retry' });
  }, 60_000);
  afterAll(async () => server?.close());

  const count = async (nhs: string, who = tenant) => ((await (await who.fetch(`Patient?identifier=${NHS}|${nhs}&_total=accurate&_count=0`)).json()) as { total: number }).total;
  const post = (path: string, body: unknown, key: string, who = tenant, signal?: AbortSignal) =>
    who.fetch(path, { method: 'POST', headers: { 'idempotency-key': key }, body: JSON.stringify(body), signal });

  test('a create sent twice with one key is stored once, and the repeat gets the first status, Location, ETag and body', async () => {
    const key = randomUUID();
    const first = await post('Patient', patient('9300000001'), key);
    const again = await post('Patient', patient('9300000001'), key);
    expect(first.status).toBe(201);
    expect(again.status).toBe(201);
    for (const h of ['location', 'etag', 'last-modified']) expect(again.headers.get(h)).toBe(first.headers.get(h));
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(await again.json()).toEqual(await first.json());
    expect(await count('9300000001')).toBe(1);
  });

  test('a transaction sent twice with one key is applied once and answered twice alike', async () => {
    const key = randomUUID();
    const first = await post('', transaction('9300000002', '9300000003'), key);
    const again = await post('', transaction('9300000002', '9300000003'), key);
    expect(first.status).toBe(200);
    expect(again.status).toBe(200);
    expect(await again.json()).toEqual(await first.json());
    expect(await count('9300000002')).toBe(1);
    expect(await count('9300000003')).toBe(1);
  });

  test('16 identical requests at once with one key write once and all get the same answer', async () => {
    const key = randomUUID();
    const responses = await Promise.all(Array.from({ length: 16 }, () => post('', transaction('9300000004'), key)));
    expect(responses.map((r) => r.status)).toEqual(Array(16).fill(200));
    const locations = new Set(await Promise.all(responses.map(async (r) => ((await r.json()) as { entry: { response: { location: string } }[] }).entry[0].response.location)));
    expect(locations.size).toBe(1);
    expect(await count('9300000004')).toBe(1);
  });

  test('the same key on a different request is a 422 OperationOutcome and writes nothing', async () => {
    const key = randomUUID();
    expect((await post('Patient', patient('9300000005'), key)).status).toBe(201);
    const other = await post('Patient', patient('9300000006'), key);
    expect(other.status).toBe(422);
    expect(await other.json()).toMatchObject({ resourceType: 'OperationOutcome', issue: [{ code: 'business-rule', expression: ['Idempotency-Key'] }] });
    expect(await count('9300000006')).toBe(0);
  });

  test('keys are per client and endpoint: another client using the same key writes its own resource', async () => {
    const other = await server.provision({ name: 'Retry 2', defaultSourceOrg: 'Organization/retry-2' });
    const key = randomUUID();
    expect((await post('Patient', patient('9300000007'), key)).status).toBe(201);
    expect((await post('Patient', patient('9300000007'), key, other)).status).toBe(201);
    expect(await count('9300000007')).toBe(1);
    expect(await count('9300000007', other)).toBe(1);
  });

  test('a refused request leaves its key unused: the corrected request with the same key is written', async () => {
    const key = randomUUID();
    const bad = await post('Patient', { ...patient('9300000008'), gender: 'sometimes' }, key);
    expect(bad.status).toBe(400);
    const good = await post('Patient', patient('9300000008'), key);
    expect(good.status).toBe(201);
    expect(good.headers.get('idempotent-replayed')).toBeNull();
    expect(await count('9300000008')).toBe(1);
  });

  test('a client that gave up before the answer retries with its key and finds the write made once', async () => {
    const key = randomUUID();
    const abort = new AbortController();
    const lost = post('', transaction('9300000009'), key, tenant, abort.signal).catch((err: Error) => err);
    setImmediate(() => abort.abort());
    await lost;
    const retry = await post('', transaction('9300000009'), key);
    expect(retry.status).toBe(200);
    expect(await count('9300000009')).toBe(1);
  });

  test('a batch with a key keeps its per-entry answers: the failing entry is undone on its own and the repeat replays them', async () => {
    const key = randomUUID();
    const batch = {
      resourceType: 'Bundle',
      type: 'batch',
      entry: [
        { request: { method: 'POST', url: 'Patient' }, resource: patient('9300000010') },
        { request: { method: 'PUT', url: 'Patient/nope', ifMatch: 'W/"7"' }, resource: patient('9300000011', { id: 'nope' }) },
        { request: { method: 'DELETE', url: 'Patient/missing' } },
      ],
    };
    const first = await post('', batch, key);
    const again = await post('', batch, key);
    const statuses = ((await first.json()) as { entry: { response: { status: string } }[] }).entry.map((e) => e.response.status.slice(0, 3));
    expect(statuses).toEqual(['201', '412', '204']);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(await count('9300000010')).toBe(1);
    expect(await count('9300000011')).toBe(0);
  });

  test('after the window the key is free again: the same request writes anew', async () => {
    const key = randomUUID();
    expect((await post('Patient', patient('9300000012'), key)).status).toBe(201);
    await server.database.db.sql.execute(`UPDATE idempotency_key SET created_at = now() - interval '2 days' WHERE key = $1`, key);
    const later = await post('Patient', patient('9300000012'), key);
    expect(later.status).toBe(201);
    expect(later.headers.get('idempotent-replayed')).toBeNull();
    expect(await count('9300000012')).toBe(2);
  });

  test('a key that is not printable ASCII is a 400 naming the header', async () => {
    const res = await post('Patient', patient('9300000013'), 'two words');
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ issue: [{ expression: ['Idempotency-Key'] }] });
  });

  test('the importer sends each Bundle with a key of its own', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'import-keys-'));
    writeFileSync(path.join(dir, 'a.json'), JSON.stringify(transaction('9300000020', '9300000021')));
    writeFileSync(path.join(dir, 'b.json'), JSON.stringify(transaction('9300000022')));
    const target = await server.provision({ name: 'Import', defaultSourceOrg: 'Organization/import' });
    const result = await runAdminCli(server, 'import', '--endpoint', target.endpointId, dir);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ loaded: 3, rejected: [] });
    const keys = await server.database.db.sql.query<{ n: number }[]>(`SELECT count(DISTINCT key)::int AS n FROM idempotency_key WHERE scope LIKE '%|' || $1`, target.endpointId);
    expect(keys[0].n).toBe(2);
  }, 120_000);
});
