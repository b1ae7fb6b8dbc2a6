import { startTestServer, type Tenant, type TestServer } from '../support/testServer';

/**
 * GraphQL searches an STU3 endpoint with the STU3 (3.0.2) search parameters, as REST does (issue 15
 * item 3): its own `$graphql` takes STU3's arguments alone and refuses R4-only ones before running;
 * /graphql's `XList(_endpoint: …)` takes either version's and search refuses what the endpoint lacks.
 */
type Json = Record<string, any>;
let server: TestServer;
let stu3: Tenant;
let r4: Tenant;
let condition: string;
let encounter: string;
let r4Condition: string;

const create = async (tenant: Tenant, resource: Json) => {
  const res = await tenant.fetch(resource.resourceType as string, { method: 'POST', body: JSON.stringify(resource) });
  expect([res.status, res.status === 201 ? '' : await res.text()]).toEqual([201, '']);
  return ((await res.json()) as { id: string }).id;
};

/** `$graphql` on a tenant's endpoint (optionally instance level), by POST. */
const operation = async (tenant: Tenant, query: string, path = '$graphql'): Promise<Json> => {
  const res = await tenant.fetch(path, { method: 'POST', body: JSON.stringify({ query }) });
  expect(res.status).toBe(200);
  return (await res.json()) as Json;
};

/** /graphql with a tenant's token. */
const graphql = async (tenant: Tenant, query: string, variables: Json = {}): Promise<Json> => {
  const res = await fetch(`${server.url}/graphql`, {
    method: 'POST',
    headers: { authorization: `Bearer ${tenant.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ query, variables }),
  });
  return (await res.json()) as Json;
};

const ids = (list: { id: string }[] | null | undefined) => (list ?? []).map((r) => r.id).sort();

beforeAll(async () => {
  server = await startTestServer();
  stu3 = await server.provision({ fhirVersion: 'STU3' });
  r4 = await server.provision({ fhirVersion: 'R4' });
  encounter = await create(stu3, { resourceType: 'Encounter', status: 'finished', class: { code: 'AMB' }, subject: { reference: 'Patient/p1' } });
  condition = await create(stu3, {
    resourceType: 'Condition',
    clinicalStatus: 'active',
    assertedDate: '2020-03-04',
    subject: { reference: 'Patient/p1' },
    context: { reference: `Encounter/${encounter}` },
  });
  await create(stu3, { resourceType: 'Condition', clinicalStatus: 'resolved', assertedDate: '2019-01-01', subject: { reference: 'Patient/p2' } });
  r4Condition = await create(r4, { resourceType: 'Condition', recordedDate: '2021-05-06', subject: { reference: 'Patient/p1' } });
}, 120_000);
afterAll(() => server.close());

describe("an STU3 endpoint's $graphql", () => {
  test('ConditionList and ConditionConnection take STU3 parameters: asserted_date, context', async () => {
    const { data, errors } = await operation(
      stu3,
      `{ byDate: ConditionList(asserted_date: "gt2020-01-01") { id }
         byContext: ConditionList(context: "Encounter/${encounter}") { id }
         page: ConditionConnection(asserted_date: "2020-03-04") { count edges { resource { id } } } }`,
    );
    expect(errors).toBeUndefined();
    expect(ids(data.byDate)).toEqual([condition]);
    expect(ids(data.byContext)).toEqual([condition]);
    expect(data.page.count).toBe(1);
    expect(data.page.edges.map((e: Json) => e.resource.id)).toEqual([condition]);
  });

  test('an R4-only argument is refused before anything runs, naming the argument and the field', async () => {
    const { data, errors } = await operation(stu3, '{ ConditionList(recorded_date: "2020-03-04") { id } }');
    expect(data).toBeUndefined();
    expect(errors).toHaveLength(1);
    expect(errors[0].message).toMatch(/Unknown argument "recorded_date" on field "Query\.ConditionList"/);
    expect(errors[0].extensions.code).toBe('GRAPHQL_VALIDATION_FAILED');
  });

  test('an instance-level $graphql follows STU3 reverse references: Encounter → ConditionList(_reference: context)', async () => {
    const { data, errors } = await operation(stu3, '{ id ConditionList(_reference: context) { id } }', `Encounter/${encounter}/$graphql`);
    expect(errors).toBeUndefined();
    expect(ids(data.ConditionList)).toEqual([condition]);
  });

  test('a reverse reference through an R4-only parameter is refused by validation, naming it (STU3 types: stu3Shapes.test.ts)', async () => {
    const { errors } = await operation(stu3, '{ id MedicationRequestList(_reference: encounter) { id } }', `Encounter/${encounter}/$graphql`);
    expect(errors?.[0]?.message).toMatch(/Value "encounter" does not exist in "Encounter_MedicationRequest_reference" enum/);
    expect(errors[0].extensions.code).toBe('GRAPHQL_VALIDATION_FAILED');
  });
});

describe('/graphql addressing an endpoint with _endpoint', () => {
  test('an STU3 endpoint is searched with STU3 parameters', async () => {
    const { data, errors } = await graphql(stu3, 'query ($ep: ID) { ConditionList(_endpoint: $ep, asserted_date: "2020-03-04") { id } }', { ep: stu3.endpointId });
    expect(errors).toBeUndefined();
    expect(ids(data.ConditionList)).toEqual([condition]);
  });

  test('an R4-only parameter on an STU3 endpoint, and an STU3-only one on R4, are refused with the version named', async () => {
    const onStu3 = await graphql(stu3, 'query ($ep: ID) { ConditionList(_endpoint: $ep, recorded_date: "2020") { id } }', { ep: stu3.endpointId });
    expect(onStu3.errors[0].message).toMatch(/Unknown search parameter 'recorded-date' for Condition in FHIR STU3/);
    expect(onStu3.errors[0].extensions).toMatchObject({ code: 'BAD_USER_INPUT', status: 400 });
    const onR4 = await graphql(r4, 'query ($ep: ID) { ConditionList(_endpoint: $ep, asserted_date: "2020") { id } }', { ep: r4.endpointId });
    expect(onR4.errors[0].message).toMatch(/Unknown search parameter 'asserted-date' for Condition in FHIR R4/);
  });

  test('an R4 endpoint keeps its R4 parameters, on /graphql and on its own $graphql', async () => {
    const viaDoor = await graphql(r4, 'query ($ep: ID) { ConditionList(_endpoint: $ep, recorded_date: "2021-05-06") { id } }', { ep: r4.endpointId });
    expect(viaDoor.errors).toBeUndefined();
    expect(ids(viaDoor.data.ConditionList)).toEqual([r4Condition]);
    const own = await operation(r4, '{ ConditionList(recorded_date: "2021-05-06") { id } }');
    expect(own.errors).toBeUndefined();
    expect(ids(own.data.ConditionList)).toEqual([r4Condition]);
  });
});

describe('the STU3 schema changes no access rule', () => {
  test("another customer's client gets 404 from the STU3 endpoint's $graphql and an error naming no data at /graphql", async () => {
    const query = '{ ConditionList(asserted_date: "2020-03-04") { id } }';
    const res = await fetch(`${stu3.baseUrl}/$graphql`, {
      method: 'POST',
      headers: { authorization: `Bearer ${r4.token}`, 'content-type': 'application/fhir+json' },
      body: JSON.stringify({ query }),
    });
    expect(res.status).toBe(404);
    expect(await res.text()).not.toContain(condition);
    const viaDoor = await graphql(r4, 'query ($ep: ID) { ConditionList(_endpoint: $ep, asserted_date: "2020-03-04") { id } }', { ep: stu3.endpointId });
    expect(viaDoor.data?.ConditionList ?? null).toBeNull();
    expect(viaDoor.errors[0].extensions).toMatchObject({ code: 'NOT_FOUND', status: 404 });
    expect(JSON.stringify(viaDoor)).not.toContain(condition);
  });
});
