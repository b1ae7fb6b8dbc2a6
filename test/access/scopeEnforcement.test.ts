import { startTestServer, type Tenant, type TestServer } from '../support/testServer';

/**
 * SMART scopes are enforced per interaction and resource type (issue 12, items 1 and 2), at every door:
 * REST, batch and transaction entries, `$graphql` and `/graphql`, on customer endpoints and the aggregated one.
 */
type Json = Record<string, any>;

let server: TestServer;
let t: Tenant;
let patientId: string;
let observationId: string;

/** A token of a new client of `t`'s customer registered with (and granted) `scopes`. */
async function tokenWith(scopes: string): Promise<string> {
  const client = await server.admin<{ client_id: string; client_secret: string }>('POST', '/admin/clients', { customerId: t.customerId, family: 'fhir', scopes });
  return server.token(client.client_id, client.client_secret);
}

function call(token: string, path: string, init: RequestInit = {}): Promise<Response> {
  const url = path.startsWith('http') ? path : `${t.baseUrl}/${path.replace(/^\//, '')}`;
  return fetch(url, { ...init, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/fhir+json', ...(init.headers as Record<string, string>) } });
}

const observation = (subject: string) => ({ resourceType: 'Observation', status: 'final', code: { text: 'pulse' }, subject: { reference: subject } });

async function countOf(type: string): Promise<number> {
  const res = await t.fetch(`${type}?_total=accurate&_count=0`);
  return ((await res.json()) as Json).total;
}

async function graphql(token: string, url: string, query: string): Promise<Json> {
  const res = await fetch(url, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ query }) });
  return (await res.json()) as Json;
}

beforeAll(async () => {
  server = await startTestServer();
  t = await server.provision({ defaultSourceOrg: 'Organization/src' });
  const p = await t.fetch('Patient', { method: 'POST', body: JSON.stringify({ resourceType: 'Patient', gender: 'female' }) });
  patientId = ((await p.json()) as Json).id;
  const o = await t.fetch('Observation', { method: 'POST', body: JSON.stringify(observation(`Patient/${patientId}`)) });
  observationId = ((await o.json()) as Json).id;
});
afterAll(() => server.close());

describe('REST on a customer endpoint', () => {
  test.each(['system/Patient.read', 'system/Patient.rs'])('a token carrying only %s cannot create an Observation: 403 naming the scope', async (scope) => {
    const token = await tokenWith(scope);
    const before = await countOf('Observation');
    const res = await call(token, 'Observation', { method: 'POST', body: JSON.stringify(observation(`Patient/${patientId}`)) });
    expect(res.status).toBe(403);
    expect(res.headers.get('www-authenticate')).toBe('Bearer realm="tributary", error="insufficient_scope", scope="system/Observation.c"');
    const outcome = (await res.json()) as Json;
    expect(outcome.resourceType).toBe('OperationOutcome');
    expect(outcome.issue[0].code).toBe('forbidden');
    expect(outcome.issue[0].diagnostics).toContain('system/Observation.c');
    expect(await countOf('Observation')).toBe(before);
    // …while what the scope grants still works.
    expect((await call(token, `Patient/${patientId}`)).status).toBe(200);
    expect((await call(token, 'Patient?gender=female')).status).toBe(200);
  });

  test('v2 letters are separate: r reads but does not search, s searches but does not read', async () => {
    const readOnly = await tokenWith('system/Patient.r');
    expect((await call(readOnly, `Patient/${patientId}`)).status).toBe(200);
    const search = await call(readOnly, 'Patient?gender=female');
    expect(search.status).toBe(403);
    expect(search.headers.get('www-authenticate')).toContain('scope="system/Patient.s"');
    const searchOnly = await tokenWith('system/Patient.s');
    expect((await call(searchOnly, 'Patient?gender=female')).status).toBe(200);
    expect((await call(searchOnly, `Patient/${patientId}`)).status).toBe(403);
  });

  test('v1 write and v2 wildcards: system/*.write creates any type but cannot read; update and delete need u and d', async () => {
    const write = await tokenWith('system/*.write');
    const created = await call(write, 'Observation', { method: 'POST', body: JSON.stringify(observation(`Patient/${patientId}`)) });
    expect(created.status).toBe(201);
    const id = ((await created.json()) as Json).id;
    expect((await call(write, `Observation/${id}`)).status).toBe(403);
    const cr = await tokenWith('system/*.cr');
    const put = await call(cr, `Observation/${id}`, { method: 'PUT', body: JSON.stringify({ ...observation(`Patient/${patientId}`), id }) });
    expect(put.status).toBe(403);
    expect(put.headers.get('www-authenticate')).toContain('scope="system/Observation.u"');
    expect((await call(cr, `Observation/${id}`, { method: 'DELETE' })).status).toBe(403);
    expect((await call(write, `Observation/${id}`, { method: 'DELETE' })).status).toBe(204);
  });

  test('a conditional create needs search as well as create', async () => {
    const createOnly = await tokenWith('system/Observation.c');
    const res = await call(createOnly, 'Observation', { method: 'POST', body: JSON.stringify(observation(`Patient/${patientId}`)), headers: { 'if-none-exist': 'code=pulse' } });
    expect(res.status).toBe(403);
    expect(res.headers.get('www-authenticate')).toContain('scope="system/Observation.s"');
  });

  test('a system-level search returns only the types the token may search', async () => {
    const token = await tokenWith('system/Patient.rs');
    const res = await call(token, '?_count=100');
    expect(res.status).toBe(200);
    const types = new Set(((await res.json()) as Json).entry.map((e: Json) => e.resource.resourceType));
    expect([...types]).toEqual(['Patient']);
    const history = (await (await call(token, '_history?_count=100')).json()) as Json;
    expect(new Set(history.entry.map((e: Json) => e.request.url.split('/')[0]))).toEqual(new Set(['Patient']));
    expect((await call(token, '?_type=Observation')).status).toBe(403);
    expect((await call(token, 'Observation/_history')).status).toBe(403);
    const nothing = await tokenWith('system/Patient.c');
    expect((await call(nothing, '?_count=1')).status).toBe(403);
  });

  test('_include and _revinclude of types the token may neither read nor search add nothing', async () => {
    const token = await tokenWith('system/Patient.rs');
    const rev = (await (await call(token, `Patient?_id=${patientId}&_revinclude=Observation:subject`)).json()) as Json;
    expect(rev.entry.map((e: Json) => e.resource.resourceType)).toEqual(['Patient']);
    const full = (await (await t.fetch(`Patient?_id=${patientId}&_revinclude=Observation:subject`)).json()) as Json;
    expect(full.entry.map((e: Json) => e.resource.resourceType)).toContain('Observation');
    const observations = await tokenWith('system/Observation.rs');
    const inc = (await (await call(observations, `Observation?_id=${observationId}&_include=Observation:subject`)).json()) as Json;
    expect(inc.entry.map((e: Json) => e.resource.resourceType)).toEqual(['Observation']);
  });

  test('a client cannot be granted more than it was registered with: invalid_scope', async () => {
    const client = await server.admin<{ client_id: string; client_secret: string }>('POST', '/admin/clients', {
      customerId: t.customerId,
      family: 'fhir',
      scopes: 'system/Patient.rs',
    });
    const res = await fetch(`${server.url}/oauth2/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', client_id: client.client_id, client_secret: client.client_secret, scope: 'system/Observation.c' }).toString(),
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as Json).error).toBe('invalid_scope');
  });
});

describe('batch and transaction Bundles', () => {
  const bundle = (type: 'transaction' | 'batch') => ({
    resourceType: 'Bundle',
    type,
    entry: [
      { fullUrl: 'urn:uuid:8a3c4d1e-0000-4000-8000-000000000001', resource: { resourceType: 'Patient', gender: 'male' }, request: { method: 'POST', url: 'Patient' } },
      { resource: observation('urn:uuid:8a3c4d1e-0000-4000-8000-000000000001'), request: { method: 'POST', url: 'Observation' } },
    ],
  });

  test('a transaction with one entry outside the scopes is refused with 403 naming that entry, and nothing is written', async () => {
    const token = await tokenWith('system/Patient.cruds');
    const patients = await countOf('Patient');
    const res = await call(token, '', { method: 'POST', body: JSON.stringify(bundle('transaction')) });
    expect(res.status).toBe(403);
    const outcome = (await res.json()) as Json;
    expect(outcome.issue[0].code).toBe('forbidden');
    expect(outcome.issue[0].diagnostics).toContain('Bundle.entry[1]');
    expect(outcome.issue[0].diagnostics).toContain('system/Observation.c');
    expect(await countOf('Patient')).toBe(patients);
  });

  test('a conditional update that would create needs the create scope, in a transaction as over REST', async () => {
    const token = await tokenWith('system/Patient.rus');
    const patient = { resourceType: 'Patient', identifier: [{ system: 'urn:test', value: 'cond-1' }] };
    const rest = await call(token, 'Patient?identifier=urn:test|cond-1', { method: 'PUT', body: JSON.stringify(patient) });
    expect(rest.status).toBe(403);
    expect(rest.headers.get('www-authenticate')).toContain('scope="system/Patient.c"');
    const tx = await call(token, '', {
      method: 'POST',
      body: JSON.stringify({ resourceType: 'Bundle', type: 'transaction', entry: [{ resource: patient, request: { method: 'PUT', url: 'Patient?identifier=urn:test|cond-1' } }] }),
    });
    expect(tx.status).toBe(403);
    expect(((await tx.json()) as Json).issue[0].diagnostics).toContain('Bundle.entry[0]');
    expect(((await (await t.fetch('Patient?identifier=urn:test|cond-1')).json()) as Json).entry ?? []).toEqual([]);
  });

  test('in a batch only the entry outside the scopes fails, with 403', async () => {
    const token = await tokenWith('system/Patient.cruds');
    const res = await call(token, '', { method: 'POST', body: JSON.stringify(bundle('batch')) });
    expect(res.status).toBe(200);
    const body = (await res.json()) as Json;
    expect(body.entry[0].response.status).toMatch(/^201/);
    expect(body.entry[1].response.status).toBe('403');
    expect(body.entry[1].response.outcome.issue[0].code).toBe('forbidden');
  });
});

describe('GraphQL', () => {
  const forbidden = (result: Json) => result.errors?.find((e: Json) => e.extensions?.code === 'FORBIDDEN');

  test('$graphql on a customer endpoint: a list of a type the token does not cover is FORBIDDEN', async () => {
    const token = await tokenWith('system/Patient.rs');
    const result = await graphql(
      token,
      `${t.baseUrl}/$graphql`,
      `
        {
          ObservationList(code: "pulse") {
            id
          }
        }
      `,
    );
    expect(forbidden(result)).toBeDefined();
    expect(forbidden(result).extensions.resource?.resourceType ?? 'OperationOutcome').toBe('OperationOutcome');
    const allowed = await graphql(
      token,
      `${t.baseUrl}/$graphql`,
      `
        {
          PatientList(gender: "female") {
            id
          }
        }
      `,
    );
    expect(allowed.errors).toBeUndefined();
  });

  test('$graphql at instance level needs read on the instance type', async () => {
    const token = await tokenWith('system/Observation.rs');
    const res = await call(token, `Patient/${patientId}/$graphql`, { method: 'POST', body: JSON.stringify({ query: '{ id }' }), headers: { 'content-type': 'application/json' } });
    expect(res.status).toBe(403);
  });

  test('a reference to a type the token cannot read does not resolve', async () => {
    const token = await tokenWith('system/Observation.rs');
    const result = await graphql(token, `${t.baseUrl}/$graphql`, `{ Observation(id: "${observationId}") { id subject { resource { ... on Patient { gender } } } } }`);
    expect(result.data?.Observation?.id).toBe(observationId);
    expect(result.data?.Observation?.subject?.resource ?? null).toBeNull();
    expect(forbidden(result)).toBeDefined();
  });

  test('reverse references through a type the token cannot search are FORBIDDEN', async () => {
    const token = await tokenWith('system/Patient.rs');
    const result = await graphql(token, `${t.baseUrl}/$graphql`, `{ Patient(id: "${patientId}") { id ObservationList(_reference: subject) { id } } }`);
    expect(forbidden(result)).toBeDefined();
  });

  test('a /graphql mutation outside the scopes is FORBIDDEN and writes nothing', async () => {
    const token = await tokenWith('system/Patient.rs');
    const before = await countOf('Observation');
    const result = await graphql(
      token,
      `${server.url}/graphql`,
      `mutation { ObservationCreate(res: { status: "final", code: { text: "pulse" } }, _endpoint: "${t.endpointId}") { id } }`,
    );
    expect(forbidden(result)).toBeDefined();
    expect(await countOf('Observation')).toBe(before);
    const del = await graphql(token, `${server.url}/graphql`, `mutation { PatientDelete(id: "${patientId}", _endpoint: "${t.endpointId}") { issue { diagnostics } } }`);
    expect(forbidden(del)).toBeDefined();
    expect((await t.fetch(`Patient/${patientId}`)).status).toBe(200);
  });
});

describe('the aggregated endpoint', () => {
  test('a token without read on a type cannot read or search it there, over REST or GraphQL', async () => {
    await server.waitForAggregation();
    const token = await tokenWith('system/Patient.rs');
    const agg = (p: string) => call(token, `${server.url}/fhir/aggregated/${p}`);
    expect((await agg('Patient')).status).toBe(200);
    const search = await agg('Observation');
    expect(search.status).toBe(403);
    expect(search.headers.get('www-authenticate')).toContain('scope="system/Observation.s"');
    const result = await graphql(
      token,
      `${server.url}/fhir/aggregated/$graphql`,
      `
        {
          ObservationList {
            id
          }
        }
      `,
    );
    expect(result.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
  });
});
