import { loadConfig } from '../../src/config';
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

/** The src of every script and href of every stylesheet a page loads. */
function loadedUrls(html: string): string[] {
  return [...html.matchAll(/<(?:script|link)\b[^>]*\b(?:src|href)="([^"]+)"/g)].map((m) => m[1]);
}

describe('with GRAPHQL_EXPLORER=graphiql (a closed network)', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ AGGREGATION_WORKER: 'off', GRAPHQL_EXPLORER: 'graphiql' });
  });
  afterAll(() => server.close());

  test('a browser opening /graphql gets the self-hosted GraphiQL page, not Apollo Sandbox', async () => {
    const res = await browserGet(server);
    expect(res.status).toBe(200);
    const html = await res.text();
    expect(html).toMatch(/GraphQL explorer/);
    expect(html).not.toMatch(/sandbox|apollographql/i);
    expect(html).toBe(await (await fetch(`${server.url}/graphiql`)).text());
  });

  test('everything the page loads comes from this server, and is there', async () => {
    const html = await (await fetch(`${server.url}/graphiql`)).text();
    const urls = loadedUrls(html);
    expect(urls.length).toBeGreaterThan(0);
    for (const url of urls) {
      expect(url).toMatch(/^\/ui\/assets\/[\w.-]+$/);
      const asset = await fetch(`${server.url}${url}`);
      expect(asset.status).toBe(200);
      expect(asset.headers.get('content-type')).toMatch(/javascript|css/);
      expect(asset.headers.get('cache-control')).toMatch(/immutable/);
      // No stylesheet pulls fonts or images from elsewhere.
      if (url.endsWith('.css')) expect(await asset.text()).not.toMatch(/url\(\s*["']?https?:/);
    }
  });

  test('an asset name that is not one of ours is a 404 OperationOutcome', async () => {
    for (const name of ['..%2Fpackage.json', '.build-stamp.json', 'nothing-here.js']) {
      const res = await fetch(`${server.url}/ui/assets/${name}`);
      expect(res.status).toBe(404);
      expect(((await res.json()) as { resourceType: string }).resourceType).toBe('OperationOutcome');
    }
  });

  test('the page posts queries with the bearer token it is given, and the server answers them', async () => {
    // What the explorer's fetcher sends (app/shared/graphqlClient.ts): POST /graphql, JSON, Authorization.
    const t = await server.provision();
    expect(await introspect(server, t)).toEqual({ data: { __schema: { queryType: { name: 'Query' } } } });
  });
});

test('GRAPHQL_EXPLORER must be graphiql or sandbox', () => {
  expect(() => loadConfig({ GRAPHQL_EXPLORER: 'playground' })).toThrow(/GRAPHQL_EXPLORER='playground' must be one of sandbox, graphiql/);
  expect(loadConfig({}).graphql.explorer).toBe('sandbox');
});
