import { loadConfig } from '../../src/config';
import { startTestServer, type Tenant, type TestServer } from '../support/testServer';

/**
 * Issue 12 (5): browser clients. With CORS_ORIGINS set, a preflight from an allowed origin is answered
 * with the methods and headers FHIR clients send, on the FHIR endpoints, /graphql and the token endpoint;
 * other origins get no Access-Control-Allow-Origin; none is allowed by default. The CapabilityStatement's
 * `rest.security.cors` says which is the case.
 */
type Json = Record<string, any>;
const APP = 'https://app.example';

function preflight(url: string, origin: string, method = 'PUT', headers = 'authorization,content-type,if-match,prefer') {
  return fetch(url, { method: 'OPTIONS', headers: { origin, 'access-control-request-method': method, 'access-control-request-headers': headers } });
}

const list = (value: string | null) =>
  (value ?? '')
    .toLowerCase()
    .split(',')
    .map((s) => s.trim());

async function corsFlag(t: Tenant, server: TestServer): Promise<unknown[]> {
  const customer = (await (await t.fetch('metadata')).json()) as Json;
  const aggregated = (await (await server.aggregated(t, 'metadata')).json()) as Json;
  return [customer.rest[0].security.cors, aggregated.rest[0].security.cors];
}

describe('with CORS_ORIGINS set to two origins', () => {
  let server: TestServer;
  let t: Tenant;
  beforeAll(async () => {
    server = await startTestServer({ AGGREGATION_WORKER: 'off', CORS_ORIGINS: `${APP}, https://other.example` });
    t = await server.provision();
  }, 60_000);
  afterAll(() => server.close());

  test.each([
    ['a FHIR resource type', () => `${t.baseUrl}/Patient/p1`, 'PUT'],
    ['the aggregated endpoint', () => `${server.url}/fhir/aggregated/Patient`, 'GET'],
    ['/graphql', () => `${server.url}/graphql`, 'POST'],
    ['the token endpoint', () => `${server.url}/oauth2/token`, 'POST'],
  ])('a preflight to %s from an allowed origin is answered 204 with methods and headers', async (_what, url, method) => {
    const res = await preflight(url(), APP, method);
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe(APP);
    expect(list(res.headers.get('access-control-allow-methods'))).toEqual(expect.arrayContaining(['get', 'post', 'put', 'patch', 'delete']));
    expect(list(res.headers.get('access-control-allow-headers'))).toEqual(expect.arrayContaining(['authorization', 'content-type', 'if-match', 'if-none-exist', 'prefer']));
    expect(list(res.headers.get('vary'))).toContain('origin');
  });

  test('a preflight from another origin gets no Access-Control-Allow-Origin', async () => {
    const res = await preflight(`${t.baseUrl}/Patient/p1`, 'https://evil.example');
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
  });

  test('responses to an allowed origin expose the headers FHIR clients read, errors included', async () => {
    const created = await t.fetch('Patient', { method: 'POST', headers: { origin: APP }, body: JSON.stringify({ resourceType: 'Patient', gender: 'male' }) });
    expect(created.status).toBe(201);
    expect(created.headers.get('access-control-allow-origin')).toBe(APP);
    expect(list(created.headers.get('access-control-expose-headers'))).toEqual(
      expect.arrayContaining(['location', 'etag', 'last-modified', 'content-location', 'www-authenticate']),
    );
    const refused = await fetch(`${t.baseUrl}/Patient`, { headers: { origin: APP } });
    expect(refused.status).toBe(401);
    expect(refused.headers.get('access-control-allow-origin')).toBe(APP);
  });

  test('the CapabilityStatements say cors: true', async () => {
    expect(await corsFlag(t, server)).toEqual([true, true]);
  });
});

describe('by default', () => {
  let server: TestServer;
  let t: Tenant;
  beforeAll(async () => {
    server = await startTestServer({ AGGREGATION_WORKER: 'off' });
    t = await server.provision();
  }, 60_000);
  afterAll(() => server.close());

  test('no origin is allowed', async () => {
    const res = await preflight(`${t.baseUrl}/Patient/p1`, APP);
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
    const read = await t.fetch('metadata', { headers: { origin: APP } });
    expect(read.headers.get('access-control-allow-origin')).toBeNull();
  });

  test('the CapabilityStatements say cors: false', async () => {
    expect(await corsFlag(t, server)).toEqual([false, false]);
  });
});

describe('with CORS_ORIGINS=*', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ AGGREGATION_WORKER: 'off', CORS_ORIGINS: '*' });
  }, 60_000);
  afterAll(() => server.close());

  test('any origin is allowed, without credentials', async () => {
    const res = await preflight(`${server.url}/graphql`, 'https://anywhere.example', 'POST');
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    expect(res.headers.get('access-control-allow-credentials')).toBeNull();
    expect(list(res.headers.get('access-control-allow-headers'))).toContain('authorization');
  });
});

test('CORS_ORIGINS refuses what is not an exact origin, which would never match', () => {
  expect(loadConfig({ CORS_ORIGINS: ' https://a.example ,http://localhost:3000' }).corsOrigins).toEqual(['https://a.example', 'http://localhost:3000']);
  for (const bad of ['https://a.example/', 'a.example', 'https://a.example/app']) expect(() => loadConfig({ CORS_ORIGINS: bad })).toThrow(/CORS_ORIGINS/);
});
