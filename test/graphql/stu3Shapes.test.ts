import { startTestServer, type Tenant, type TestServer } from '../support/testServer';

/**
 * An STU3 endpoint's own `$graphql` answers in FHIR 3.0's shapes (issue 15; stu3Schema.ts): STU3-only
 * elements and resource types can be selected, R4-only ones are refused by validation, decimals keep their
 * digits, references resolve within the endpoint, and writes take STU3 input. R4 endpoints keep R4's
 * shapes, and the STU3 schema opens no door: another customer's caller gets what a missing endpoint gets.
 */
type Json = Record<string, any>;
let server: TestServer;
let stu3: Tenant;
let r4: Tenant;
let condition: string;
let procedureRequest: string;

/** A resource written as JSON text (so a decimal's digits are sent as written). */
const create = async (tenant: Tenant, type: string, body: string) => {
  const res = await tenant.fetch(type, { method: 'POST', body });
  expect([res.status, res.status === 201 ? '' : await res.text()]).toEqual([201, '']);
  return ((await res.json()) as { id: string }).id;
};

/** `$graphql` on a tenant's endpoint by POST (optionally instance level): the HTTP status and the raw answer. */
const ask = async (tenant: Tenant, query: string, path = '$graphql', token = tenant.token) => {
  const res = await fetch(`${tenant.baseUrl}/${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/fhir+json' },
    body: JSON.stringify({ query }),
  });
  return { status: res.status, text: await res.text() };
};

/** `$graphql` that must answer 200: its parsed body. */
const operation = async (tenant: Tenant, query: string, path?: string): Promise<Json> => {
  const { status, text } = await ask(tenant, query, path);
  expect([status, status === 200 ? '' : text]).toEqual([200, '']);
  return JSON.parse(text) as Json;
};

beforeAll(async () => {
  server = await startTestServer({ AGGREGATION_WORKER: 'off' });
  stu3 = await server.provision({ fhirVersion: 'STU3' });
  r4 = await server.provision({ fhirVersion: 'R4' });
  expect((await stu3.fetch('Patient/p1', { method: 'PUT', body: JSON.stringify({ resourceType: 'Patient', id: 'p1', gender: 'female' }) })).status).toBe(201);
  condition = await create(
    stu3,
    'Condition',
    JSON.stringify({ resourceType: 'Condition', clinicalStatus: 'active', verificationStatus: 'confirmed', assertedDate: '2020-03-04', subject: { reference: 'Patient/p1' } }),
  );
  procedureRequest = await create(
    stu3,
    'ProcedureRequest',
    JSON.stringify({
      resourceType: 'ProcedureRequest',
      status: 'active',
      intent: 'order',
      code: { text: 'Colonoscopy' },
      subject: { reference: 'Patient/p1' },
      requester: { agent: { reference: 'Patient/p1' } },
    }),
  );
  await create(
    stu3,
    'MedicationStatement',
    JSON.stringify({ resourceType: 'MedicationStatement', status: 'completed', taken: 'n', medicationCodeableConcept: { text: 'Aspirin' }, subject: { reference: 'Patient/p1' } }),
  );
  // Written as text: 1.50 and 0.001530 keep their trailing zeros only if nothing parses them as numbers.
  await create(
    stu3,
    'Observation',
    '{"resourceType":"Observation","status":"final","code":{"text":"Creatinine"},"subject":{"reference":"Patient/p1"},"valueQuantity":{"value":1.50,"unit":"mg/dL"},"comment":"fasting","referenceRange":[{"low":{"value":0.001530}}]}',
  );
  await create(r4, 'Condition', JSON.stringify({ resourceType: 'Condition', recordedDate: '2021-05-06', subject: { reference: 'Patient/p1' } }));
}, 120_000);
afterAll(() => server.close());

describe("an STU3 endpoint's $graphql has STU3's shapes", () => {
  test('Condition.assertedDate and clinicalStatus as a code, with the subject resolved to the Patient', async () => {
    const { data, errors } = await operation(stu3, '{ ConditionList { id assertedDate clinicalStatus verificationStatus subject { resource { ... on Patient { id gender } } } } }');
    expect(errors).toBeUndefined();
    expect(data.ConditionList).toEqual([
      { id: condition, assertedDate: '2020-03-04', clinicalStatus: 'active', verificationStatus: 'confirmed', subject: { resource: { id: 'p1', gender: 'female' } } },
    ]);
  });

  test('a ProcedureRequest list with its STU3 fields (requester.agent, intent), and one read by id', async () => {
    const { data, errors } = await operation(
      stu3,
      `{ ProcedureRequestList(status: "active") { id status intent code { text } requester { agent { reference resource(type: Patient) { ... on Patient { gender } } } } }
         one: ProcedureRequest(id: "${procedureRequest}") { id subject { reference } } }`,
    );
    expect(errors).toBeUndefined();
    expect(data.ProcedureRequestList).toEqual([
      { id: procedureRequest, status: 'active', intent: 'order', code: { text: 'Colonoscopy' }, requester: { agent: { reference: 'Patient/p1', resource: { gender: 'female' } } } },
    ]);
    expect(data.one).toEqual({ id: procedureRequest, subject: { reference: 'Patient/p1' } });
  });

  test('MedicationStatement.taken, Observation.comment, and decimals with the digits they were sent with', async () => {
    const { status, text } = await ask(stu3, '{ MedicationStatementList { taken } ObservationList { comment valueQuantity { value unit } referenceRange { low { value } } } }');
    expect(status).toBe(200);
    // The exact text: a JSON parser would read 1.50 as 1.5.
    expect(text).toContain('"valueQuantity":{"value":1.50,"unit":"mg/dL"}');
    expect(text).toContain('"low":{"value":0.001530}');
    const { data, errors } = JSON.parse(text) as Json;
    expect(errors).toBeUndefined();
    expect(data.MedicationStatementList).toEqual([{ taken: 'n' }]);
    expect(data.ObservationList[0].comment).toBe('fasting');
  });

  test('an instance-level $graphql has the STU3 type as its root', async () => {
    const { data, errors } = await operation(stu3, '{ id assertedDate subject { reference } }', `Condition/${condition}/$graphql`);
    expect(errors).toBeUndefined();
    expect(data).toEqual({ id: condition, assertedDate: '2020-03-04', subject: { reference: 'Patient/p1' } });
  });

  test('an R4-only field is refused by validation, naming the field and the type', async () => {
    for (const path of ['$graphql', `Condition/${condition}/$graphql`]) {
      const query = path === '$graphql' ? '{ ConditionList { id recordedDate } }' : '{ id recordedDate }';
      const { data, errors } = await operation(stu3, query, path);
      expect(data).toBeUndefined();
      expect(errors).toHaveLength(1);
      expect(errors[0].message).toMatch(/Cannot query field "recordedDate" on type "Condition"/);
      expect(errors[0].extensions.code).toBe('GRAPHQL_VALIDATION_FAILED');
    }
  });

  test('it answers for its own endpoint alone: no _endpoint argument', async () => {
    const { errors } = await operation(stu3, `{ ConditionList(_endpoint: "${r4.endpointId}") { id } }`);
    expect(errors[0].message).toMatch(/Unknown argument "_endpoint" on field "Query\.ConditionList"/);
  });

  test('a mutation writes STU3 input and answers in STU3 shapes', async () => {
    const { data, errors } = await operation(
      stu3,
      'mutation { ProcedureRequestCreate(res: { status: "draft", intent: "proposal", code: { text: "Biopsy" }, subject: { reference: "Patient/p1" }, requester: { agent: { reference: "Patient/p1" } } }) { id status intent requester { agent { reference } } } }',
    );
    expect(errors).toBeUndefined();
    expect(data.ProcedureRequestCreate).toMatchObject({ status: 'draft', intent: 'proposal', requester: { agent: { reference: 'Patient/p1' } } });
    const read = await stu3.fetch(`ProcedureRequest/${data.ProcedureRequestCreate.id}`);
    expect(((await read.json()) as Json).requester).toEqual({ agent: { reference: 'Patient/p1' } });
  });
});

describe('R4 shapes elsewhere', () => {
  test("an R4 endpoint's $graphql is unchanged: recordedDate, not assertedDate", async () => {
    const own = await operation(r4, '{ ConditionList { recordedDate } }');
    expect(own).toEqual({ data: { ConditionList: [{ recordedDate: '2021-05-06' }] } });
    const refused = await operation(r4, '{ ConditionList { assertedDate } }');
    expect(refused.errors[0].message).toMatch(/Cannot query field "assertedDate" on type "Condition"/);
    const procedureRequest = await operation(r4, '{ ProcedureRequestList { id } }');
    expect(procedureRequest.errors[0].message).toMatch(/Cannot query field "ProcedureRequestList" on type "Query"/);
  });

  test("/graphql's XList(_endpoint: <STU3 endpoint>) keeps R4's shapes (the endpoint's own $graphql has STU3's)", async () => {
    const res = await fetch(`${server.url}/graphql`, {
      method: 'POST',
      headers: { authorization: `Bearer ${stu3.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ query: 'query ($ep: ID) { ConditionList(_endpoint: $ep) { id subject { reference } } }', variables: { ep: stu3.endpointId } }),
    });
    expect(await res.json()).toEqual({ data: { ConditionList: [{ id: condition, subject: { reference: 'Patient/p1' } }] } });
  });
});

test("another customer's caller gets from the STU3 endpoint's $graphql what a missing endpoint gets", async () => {
  const ghost = { ...stu3, baseUrl: `${server.url}/fhir/customer/ep-ghost-endpoint` };
  for (const [query, path] of [
    ['{ ConditionList { id assertedDate } ProcedureRequestList { id } }', '$graphql'],
    ['{ id assertedDate }', `Condition/${condition}/$graphql`],
    ['mutation { ProcedureRequestCreate(res: { status: "draft", intent: "proposal" }) { id } }', '$graphql'],
  ]) {
    const real = await ask(stu3, query, path, r4.token);
    const missing = await ask(ghost, query, path, r4.token);
    expect(real.status).toBe(404);
    expect(real.text.replaceAll(stu3.endpointId, 'EP')).toBe(missing.text.replaceAll('ep-ghost-endpoint', 'EP'));
    expect(real.text).not.toContain(condition);
  }
});
