import { decodeJwt } from 'jose';
import { forgeToken } from '../support/forgeToken';
import { startTestServer, type Tenant, type TestServer } from '../support/testServer';

/**
 * Regression tests for the seven trust faults of issue 12, each through the real HTTP server:
 * 1 scopes never checked, 2 the `_has` leak, 3 GRAPHQL_INTROSPECTION=off not covering `$graphql`,
 * 4 the GraphQL cost limit bypassed through a variable, 5 CORS, 6 provenance naming other customers'
 * members, 7 tokens without `exp` and tokens of revoked clients. Plus: only `metadata` answers without a token.
 * Two servers: one with defaults, one with GRAPHQL_INTROSPECTION=off, GRAPHQL_MAX_COST=500 and CORS_ORIGINS.
 */
type Json = Record<string, any>;
const NHS = 'https://fhir.nhs.uk/Id/nhs-number';
const LABEL = 'http://fhir.patientsknowbest.com/codesystem/privacy-label';
const ORIGIN = 'https://app.example';

let server: TestServer;
let strict: TestServer;
let a: Tenant;
let b: Tenant;
let s: Tenant;
let patientId: string;
let strictPatientId: string;

async function put(t: Tenant, resource: Json): Promise<void> {
  const res = await t.fetch(`${resource.resourceType}/${resource.id}`, { method: 'PUT', body: JSON.stringify(resource) });
  if (res.status >= 300) throw new Error(`${resource.resourceType}/${resource.id}: ${res.status} ${await res.text()}`);
}
async function json(res: Response | Promise<Response>): Promise<Json> {
  const r = await res;
  return { status: r.status, ...((await r.json()) as Json) };
}
const post = (url: string, token: string, body: Json) =>
  fetch(url, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
async function scopedToken(srv: TestServer, t: Tenant, scopes: string): Promise<string> {
  const c = await srv.admin<{ client_id: string; client_secret: string }>('POST', '/admin/clients', { customerId: t.customerId, family: 'fhir', scopes });
  return srv.token(c.client_id, c.client_secret);
}

beforeAll(async () => {
  [server, strict] = await Promise.all([startTestServer(), startTestServer({ GRAPHQL_INTROSPECTION: 'off', GRAPHQL_MAX_COST: '500', CORS_ORIGINS: ORIGIN })]);
  a = await server.provision({ name: 'Trust A', defaultSourceOrg: 'Organization/org' });
  b = await server.provision({ name: 'Trust B', defaultSourceOrg: 'Organization/org' });
  for (const [t, ods] of [
    [a, 'AAA'],
    [b, 'BBB'],
  ] as const) {
    await put(t, { resourceType: 'Organization', id: 'org', identifier: [{ system: 'https://fhir.nhs.uk/Id/ods-organization-code', value: ods }], name: `Trust ${ods}` });
    await put(t, { resourceType: 'Patient', id: 'p', identifier: [{ system: NHS, value: '9000000011' }], name: [{ family: `Family-${ods}` }] });
  }
  // B's secret: a mental-health Observation the patient granted nobody.
  await put(b, {
    resourceType: 'Observation',
    id: 'secret',
    meta: { security: [{ system: LABEL, code: 'MENTAL_HEALTH' }] },
    status: 'final',
    code: { coding: [{ system: 'urn:x', code: 'SECRET' }] },
    subject: { reference: 'Patient/p' },
  });
  s = await strict.provision({ name: 'Strict', defaultSourceOrg: 'Organization/org' });
  await put(s, { resourceType: 'Organization', id: 'org', identifier: [{ system: 'https://fhir.nhs.uk/Id/ods-organization-code', value: 'SSS' }] });
  await put(s, { resourceType: 'Patient', id: 'p', identifier: [{ system: NHS, value: '9000000022' }] });
  await Promise.all([server.waitForAggregation(), strict.waitForAggregation()]);
  patientId = (await json(server.aggregated(a, `Patient?identifier=${NHS}|9000000011`))).entry[0].resource.id;
  strictPatientId = (await json(strict.aggregated(s, `Patient?identifier=${NHS}|9000000022`))).entry[0].resource.id;
}, 120_000);
afterAll(() => Promise.all([server?.close(), strict?.close()]));

describe('1. scopes are checked', () => {
  test('a system/Patient.read token cannot POST an Observation: 403 insufficient_scope, nothing written', async () => {
    const token = await scopedToken(server, a, 'system/Patient.read');
    const res = await fetch(`${a.baseUrl}/Observation`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/fhir+json' },
      body: JSON.stringify({
        resourceType: 'Observation',
        identifier: [{ system: 'urn:fault', value: '1' }],
        status: 'final',
        code: { text: 'x' },
        subject: { reference: 'Patient/p' },
      }),
    });
    expect(res.status).toBe(403);
    expect(res.headers.get('www-authenticate')).toContain('error="insufficient_scope"');
    expect(((await res.json()) as Json).issue[0].code).toBe('forbidden');
    expect((await json(a.fetch('Observation?identifier=urn:fault|1&_total=accurate'))).total).toBe(0);
    // The same token still reads Patients.
    expect((await fetch(`${a.baseUrl}/Patient/p`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
  });
});

describe('2. _has does not reveal what the caller cannot see', () => {
  test("A's count of Patients with B's secret Observation equals the count for a code nobody has", async () => {
    const secret = await json(server.aggregated(a, 'Patient?_has:Observation:subject:code=urn:x|SECRET&_summary=count'));
    const nothing = await json(server.aggregated(a, 'Patient?_has:Observation:subject:code=urn:x|NOTHING&_summary=count'));
    expect(nothing.total).toBe(0);
    expect(secret.total).toBe(nothing.total);
    // B, whose Observation it is, does find the Patient: the query is right.
    expect((await json(server.aggregated(b, 'Patient?_has:Observation:subject:code=urn:x|SECRET&_summary=count'))).total).toBe(1);
  });
});

describe('3. GRAPHQL_INTROSPECTION=off covers $graphql', () => {
  const introspection = '{ __schema { queryType { name } } }';
  const refused = (body: Json) => {
    expect(body.data?.__schema).toBeUndefined();
    expect(JSON.stringify(body.errors ?? body.issue ?? [])).toMatch(/introspection/i);
  };

  test('on /graphql (as before)', async () => {
    refused(await json(post(`${strict.url}/graphql`, s.token, { query: introspection })));
  });

  test('$graphql at system level, aggregated and customer', async () => {
    refused(await json(strict.aggregated(s, '$graphql', { method: 'POST', body: JSON.stringify({ query: introspection }) })));
    refused(await json(s.fetch(`$graphql?query=${encodeURIComponent(introspection)}`)));
  });

  test('$graphql at instance level, aggregated and customer', async () => {
    refused(await json(strict.aggregated(s, `Patient/${strictPatientId}/$graphql?query=${encodeURIComponent(introspection)}`)));
    refused(await json(s.fetch(`Patient/p/$graphql?query=${encodeURIComponent('{ __type(name: "Patient") { name } }')}`)));
  });

  test('with introspection on (the default) $graphql answers it: the probe works', async () => {
    const body = await json(server.aggregated(a, '$graphql', { method: 'POST', body: JSON.stringify({ query: introspection }) }));
    expect(body.data.__schema.queryType.name).toBeDefined();
  });
});

describe('4. the cost limit counts variables', () => {
  const query = 'query ($n: Int) { PatientList(_count: $n) { id ObservationList(_reference: subject) { id } } }';
  const tooCostly = (body: Json) => {
    expect(body.data ?? undefined).toBeUndefined();
    expect(body.errors?.[0]?.message).toMatch(/cost is \d+, over the limit of 500/);
  };

  test('GRAPHQL_MAX_COST=500: _count: $n with n=1000 is refused before it runs, on /graphql and $graphql', async () => {
    tooCostly(await json(post(`${strict.url}/graphql`, s.token, { query, variables: { n: 1000 } })));
    tooCostly(await json(strict.aggregated(s, '$graphql', { method: 'POST', body: JSON.stringify({ query, variables: { n: 1000 } }) })));
  });

  test('the same query with a literal 1000 is refused, and with n=1 it runs', async () => {
    tooCostly(await json(post(`${strict.url}/graphql`, s.token, { query: query.replace('($n: Int) ', '').replace('$n', '1000') })));
    const small = await json(post(`${strict.url}/graphql`, s.token, { query, variables: { n: 1 } }));
    expect(small.errors).toBeUndefined();
    expect(small.data.PatientList).toHaveLength(1);
  });
});

describe('5. CORS', () => {
  const preflight = (srv: TestServer, origin: string) =>
    fetch(`${srv.url}/fhir/aggregated/Patient`, {
      method: 'OPTIONS',
      headers: { origin, 'access-control-request-method': 'GET', 'access-control-request-headers': 'authorization' },
    });

  test('CORS_ORIGINS=https://app.example: a preflight from that origin gets 204 and Access-Control-Allow-Origin', async () => {
    const res = await preflight(strict, ORIGIN);
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe(ORIGIN);
    const other = await preflight(strict, 'https://evil.example');
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
  });

  test('CapabilityStatement security.cors is true only when CORS_ORIGINS is set', async () => {
    // With a token, so that this asks only about CORS (metadata without one is the last describe's business).
    const withCors = await json(strict.aggregated(s, 'metadata'));
    expect(withCors.rest[0].security.cors).toBe(true);
    const without = await json(server.aggregated(a, 'metadata'));
    expect(without.rest[0].security?.cors ?? false).toBe(false);
    expect((await preflight(server, ORIGIN)).headers.get('access-control-allow-origin')).toBeNull();
  });
});

describe('6. provenance names only the caller’s own members', () => {
  const view = `query ($id: ID!) { aggregation(resourceType: "Patient", id: $id) { members { endpoint customer upstreamId } elementSources { element endpoint upstreamId } } }`;

  test("aggregation(id:) of the merged Patient lists A's member only, and no element names B's endpoint", async () => {
    const res = await json(post(`${server.url}/graphql`, a.token, { query: view, variables: { id: patientId } }));
    expect(res.errors).toBeUndefined();
    expect(res.data.aggregation.members).toEqual([{ endpoint: a.endpointId, customer: a.customerId, upstreamId: 'p' }]);
    expect(JSON.stringify(res.data)).not.toContain(b.endpointId);
    expect(JSON.stringify(res.data)).not.toContain(b.customerId);
    // B sees its own member the same way.
    const forB = await json(post(`${server.url}/graphql`, b.token, { query: view, variables: { id: patientId } }));
    expect(forB.data.aggregation.members).toEqual([{ endpoint: b.endpointId, customer: b.customerId, upstreamId: 'p' }]);
  });

  test('the other members are only counted (otherSources)', async () => {
    const res = await json(
      post(`${server.url}/graphql`, a.token, { query: `query ($id: ID!) { aggregation(resourceType: "Patient", id: $id) { otherSources } }`, variables: { id: patientId } }),
    );
    expect(res.errors).toBeUndefined();
    expect(res.data.aggregation.otherSources).toBe(1);
  });
});

describe('7. tokens', () => {
  test('a token without exp, signed with the server’s own key, is refused with 401', async () => {
    const claims = decodeJwt(a.token);
    const { exp: _exp, ...rest } = claims;
    const forever = await forgeToken(server.dataDir, 'fhir', rest);
    // The same claims with an exp are accepted: the key and the claims are right.
    const control = await forgeToken(server.dataDir, 'fhir', { ...rest, exp: Math.floor(Date.now() / 1000) + 60 });
    expect((await fetch(`${a.baseUrl}/Patient/p`, { headers: { authorization: `Bearer ${control}` } })).status).toBe(200);
    const res = await fetch(`${a.baseUrl}/Patient/p`, { headers: { authorization: `Bearer ${forever}` } });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toContain('error="invalid_token"');
  });

  test("a revoked client's token is refused on the next request", async () => {
    const c = await server.admin<{ client_id: string; client_secret: string }>('POST', '/admin/clients', { customerId: a.customerId, family: 'fhir' });
    const token = await server.token(c.client_id, c.client_secret);
    const read = () => fetch(`${a.baseUrl}/Patient/p`, { headers: { authorization: `Bearer ${token}` } });
    expect((await read()).status).toBe(200);
    await server.admin('DELETE', `/admin/clients/${c.client_id}`);
    expect((await read()).status).toBe(401);
    expect((await fetch(`${server.url}/fhir/aggregated/Patient/${patientId}`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(401);
    expect((await post(`${server.url}/graphql`, token, { query: '{ PatientList { id } }' })).status).toBe(401);
  });
});

describe('without a token', () => {
  test('metadata answers on both doors', async () => {
    expect((await fetch(`${server.url}/fhir/aggregated/metadata`)).status).toBe(200);
    expect((await fetch(`${a.baseUrl}/metadata`)).status).toBe(200);
  });

  test.each([
    ['GET', '/fhir/aggregated/Patient'],
    ['GET', '/fhir/aggregated/Patient/x'],
    ['GET', '/fhir/aggregated/_history'],
    ['POST', '/fhir/aggregated/$graphql'],
    ['GET', '/fhir/customer/{ep}/Patient'],
    ['GET', '/fhir/customer/{ep}/Patient/p'],
    ['POST', '/fhir/customer/{ep}/Patient'],
    ['POST', '/fhir/customer/{ep}'],
    ['POST', '/graphql'],
    ['GET', '/admin/customers'],
  ])('%s %s is 401', async (method, path) => {
    const res = await fetch(`${server.url}${path.replace('{ep}', a.endpointId)}`, {
      method,
      headers: { 'content-type': 'application/json' },
      ...(method === 'POST' ? { body: JSON.stringify(path.endsWith('graphql') ? { query: '{ PatientList { id } }' } : { resourceType: 'Patient' }) } : {}),
    });
    expect(res.status).toBe(401);
  });
});
