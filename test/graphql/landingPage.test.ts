import { startTestServer, type Tenant, type TestServer } from '../support/testServer';

/** Apollo Sandbox and introspection: on by default (development), off when configured so (production). */
async function introspect(server: TestServer, t: Tenant) {
  const res = await fetch(`${server.url}/graphql`, {
    method: 'POST',
    headers: { authorization: `Bearer ${t.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ query: '{ __schema { queryType { name } } }' }),
  });
  return (await res.json()) as { data?: unknown; errors?: { message: string }[] };
}

const browserGet = (server: TestServer) => fetch(`${server.url}/graphql`, { headers: { accept: 'text/html' } });

describe('by default', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ AGGREGATION_WORKER: 'off' });
  });
  afterAll(() => server.close());

  test('a browser opening /graphql gets the Apollo Sandbox landing page', async () => {
    const res = await browserGet(server);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/text\/html/);
    expect(await res.text()).toMatch(/sandbox/i);
  });

  test('introspection answers', async () => {
    expect(await introspect(server, await server.provision())).toEqual({ data: { __schema: { queryType: { name: 'Query' } } } });
  });
});

describe('with GRAPHQL_SANDBOX=false and GRAPHQL_INTROSPECTION=false', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ AGGREGATION_WORKER: 'off', GRAPHQL_SANDBOX: 'false', GRAPHQL_INTROSPECTION: 'false' });
  });
  afterAll(() => server.close());

  test('no landing page', async () => {
    expect(await (await browserGet(server)).text()).not.toMatch(/sandbox/i);
  });

  test('introspection is refused', async () => {
    const body = await introspect(server, await server.provision());
    expect(body.data).toBeUndefined();
    expect(body.errors?.[0].message).toMatch(/introspection/i);
  });
});
