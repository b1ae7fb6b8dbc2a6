import { startTestServer, type TestServer } from '../support/testServer';

/**
 * The GraphQL schema is built on the first GraphQL request, not at start (graphqlDoor.ts, issue 19): the
 * requests that arrive while it is being built, through every GraphQL door at once, wait for the same build
 * and are all answered.
 */
let server: TestServer;
beforeAll(async () => {
  server = await startTestServer({ AGGREGATION_WORKER: 'off' });
});
afterAll(() => server.close());

test('the first requests to /graphql, its landing page and $graphql, arriving together, are all answered', async () => {
  const t = await server.provision();
  expect((await t.fetch('Patient/p1', { method: 'PUT', body: JSON.stringify({ resourceType: 'Patient', id: 'p1', gender: 'female' }) })).status).toBe(201);
  const query = `{ Patient(id: "p1", _endpoint: "${t.endpointId}") { id gender } }`;
  const post = () =>
    fetch(`${server.url}/graphql`, {
      method: 'POST',
      headers: { authorization: `Bearer ${t.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ query }),
    });
  const [first, second, page, operation] = await Promise.all([
    post(),
    post(),
    fetch(`${server.url}/graphql`, { headers: { accept: 'text/html' } }),
    t.fetch(`$graphql?query=${encodeURIComponent('{ Patient(id: "p1") { gender } }')}`),
  ]);
  for (const res of [first, second]) expect(await res.json()).toEqual({ data: { Patient: { id: 'p1', gender: 'female' } } });
  expect(page.status).toBe(200);
  expect(page.headers.get('content-type')).toMatch(/text\/html/);
  expect(operation.status).toBe(200);
  expect(await operation.json()).toEqual({ data: { Patient: { gender: 'female' } } });
});
