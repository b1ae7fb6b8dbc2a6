import { gql } from '@apollo/client/core';
import { startTestServer, type Tenant, type TestServer } from '../support/testServer';
import { graphqlClient } from './client';

/**
 * The FHIR GraphQL specification's own examples (R4 graphql.html: field selection, list navigation,
 * resource references), through the real server with a real GraphQL client, on a customer endpoint's record.
 * The Patient is shaped like the specification's `Patient/example`: an official and a usual name, a phone
 * and an email, a managing Organization.
 */
type Json = Record<string, any>;
let server: TestServer;
let t: Tenant;
let client: ReturnType<typeof graphqlClient>;

async function put(resource: Json) {
  const res = await t.fetch(`${resource.resourceType}/${resource.id}`, { method: 'PUT', body: JSON.stringify(resource) });
  if (res.status >= 300) throw new Error(await res.text());
}

const query = (text: string) => client.query(gql(text), { ep: t.endpointId });

beforeAll(async () => {
  server = await startTestServer();
  t = await server.provision({ defaultSourceOrg: 'Organization/org1' });
  client = graphqlClient(server.url, t.token);
  await put({ resourceType: 'Organization', id: 'org1', name: 'Gastroenterology' });
  await put({
    resourceType: 'Patient',
    id: 'example',
    name: [
      { use: 'official', family: 'Chalmers', given: ['Peter', 'James'] },
      { use: 'usual', given: ['Jim'] },
      { use: 'maiden', family: 'Windsor', given: ['Peter', 'James'] },
    ],
    telecom: [
      { system: 'phone', value: '(03) 5555 6473', use: 'work', rank: 1 },
      { system: 'phone', value: '(03) 3410 5613', use: 'mobile', rank: 2 },
      { system: 'email', value: 'peter@example.org', use: 'home' },
    ],
    gender: 'male',
    birthDate: '1974-12-25',
    managingOrganization: { reference: 'Organization/org1' },
  });
  await put({
    resourceType: 'Observation',
    id: 'bp',
    status: 'final',
    code: { text: 'Blood pressure' },
    subject: { reference: 'Patient/example' },
    component: [
      { code: { text: 'systolic' }, valueQuantity: { value: 107, unit: 'mmHg' } },
      { code: { text: 'diastolic' }, valueQuantity: { value: 60, unit: 'mmHg' } },
    ],
  });
}, 120_000);
afterAll(() => server.close());

describe('list navigation on repeating elements', () => {
  test('name(use: official) { given family }: only the official name (the code written bare, as the specification writes it)', async () => {
    const { data, errors } = await query('query ($ep: ID) { Patient(id: "example", _endpoint: $ep) { name(use: official) { given family } } }');
    expect(errors).toBeUndefined();
    expect(data.Patient).toEqual({ name: [{ given: ['Peter', 'James'], family: 'Chalmers' }] });
  });

  test('telecom(system: phone) and a quoted code filter alike; two filters must both hold', async () => {
    const { data, errors } = await query(
      'query ($ep: ID) { Patient(id: "example", _endpoint: $ep) { phones: telecom(system: phone) { value } mobile: telecom(system: "phone", use: mobile) { value } } }',
    );
    expect(errors).toBeUndefined();
    expect(data.Patient).toEqual({ phones: [{ value: '(03) 5555 6473' }, { value: '(03) 3410 5613' }], mobile: [{ value: '(03) 3410 5613' }] });
  });

  test('a filter on a repeating field keeps the elements where any of its values match; integers filter as integers', async () => {
    const { data, errors } = await query('query ($ep: ID) { Patient(id: "example", _endpoint: $ep) { name(given: "Jim") { use } telecom(rank: 2) { use } } }');
    expect(errors).toBeUndefined();
    expect(data.Patient).toEqual({ name: [{ use: 'usual' }], telecom: [{ use: 'mobile' }] });
  });

  test('fhirpath: "family.exists()" keeps the names with a family', async () => {
    const { data, errors } = await query('query ($ep: ID) { Patient(id: "example", _endpoint: $ep) { name(fhirpath: "family.exists()") { text given family } } }');
    expect(errors).toBeUndefined();
    expect(data.Patient.name.map((n: Json) => n.family)).toEqual(['Chalmers', 'Windsor']);
    expect(data.Patient.name[0].text).toBeNull();
  });

  test('fhirpath knows the element type: a choice element is reached as value.ofType(Quantity) on a backbone element', async () => {
    const { data, errors } = await query(
      'query ($ep: ID) { Observation(id: "bp", _endpoint: $ep) { component(fhirpath: "value.ofType(Quantity).value > 100") { code { text } valueQuantity { value } } } }',
    );
    expect(errors).toBeUndefined();
    expect(data.Observation).toEqual({ component: [{ code: { text: 'systolic' }, valueQuantity: { value: 107 } }] });
  });

  test('_offset and _count page the list after the filters; on a primitive list too', async () => {
    const { data, errors } = await query(
      `query ($ep: ID) { Patient(id: "example", _endpoint: $ep) {
        second: telecom(system: phone, _offset: 1, _count: 1) { value }
        first: name(_count: 1) { use given(_offset: 1) }
        none: name(_offset: 5) { use }
      } }`,
    );
    expect(errors).toBeUndefined();
    expect(data.Patient).toEqual({ second: [{ value: '(03) 3410 5613' }], first: [{ use: 'official', given: ['James'] }], none: [] });
  });

  test('the list arguments work inside extension(url:), which is the same generated filter', async () => {
    await put({
      resourceType: 'Patient',
      id: 'ext',
      extension: [
        { url: 'https://example.org/a', valueString: 'A1' },
        { url: 'https://example.org/b', valueString: 'B' },
        { url: 'https://example.org/a', valueString: 'A2' },
      ],
    });
    const { data, errors } = await query('query ($ep: ID) { Patient(id: "ext", _endpoint: $ep) { extension(url: "https://example.org/a", _offset: 1) { valueString } } }');
    expect(errors).toBeUndefined();
    expect(data.Patient).toEqual({ extension: [{ valueString: 'A2' }] });
  });

  test.each([
    ['a fhirpath that does not parse', 'name(fhirpath: "family.(") { family }', /fhirpath: "family\.\(" on name is not a FHIRPath expression/],
    ['a fhirpath that is not a boolean', 'name(fhirpath: "family") { family }', /must give one boolean for each element; it gave \["Chalmers"\]/],
    ['a negative _count', 'name(_count: -1) { family }', /_count on name must be 0 or more, not -1/],
  ])('%s is a 400 OperationOutcome naming the field, and the rest of the answer stands', async (_what, selection, message) => {
    const { data, errors } = await query(`query ($ep: ID) { Patient(id: "example", _endpoint: $ep) { gender ${selection} } }`);
    expect(errors).toHaveLength(1);
    expect(errors?.[0].message).toMatch(message);
    expect(errors?.[0].extensions).toMatchObject({ status: 400, resource: { resourceType: 'OperationOutcome', issue: [{ code: 'invalid', expression: ['Patient.name'] }] } });
    expect(data.Patient).toEqual({ gender: 'male', name: null });
  });

  test('a filter argument must have its field type: a string for an integer is a 400 before anything runs', async () => {
    const res = await fetch(`${server.url}/graphql`, {
      method: 'POST',
      headers: { authorization: `Bearer ${t.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ query: `{ Patient(id: "example", _endpoint: "${t.endpointId}") { telecom(rank: "2") { value } } }` }),
    });
    expect(res.status).toBe(400);
    const body = (await res.json()) as Json;
    expect(body.data).toBeUndefined();
    expect(body.errors[0].message).toMatch(/Int cannot represent non-integer value: "2"/);
  });
});

describe('fields asked for but absent', () => {
  test('{ Patient { name { text } } }: an absent single field is null, an absent list is null, a filtered-out list is empty', async () => {
    const { data, errors } = await query(
      `query ($ep: ID) { Patient(id: "example", _endpoint: $ep) {
        name { text }
        deceasedBoolean
        maritalStatus { text }
        address { city }
        photo(_count: 1) { url }
        _birthDate { id }
        nicknames: name(use: nickname) { given }
      } }`,
    );
    expect(errors).toBeUndefined();
    expect(data.Patient).toEqual({
      name: [{ text: null }, { text: null }, { text: null }],
      deceasedBoolean: null,
      maritalStatus: null,
      address: null,
      photo: null,
      _birthDate: null,
      nicknames: [],
    });
  });
});

describe('resource references', () => {
  test('subject { reference resource { ... on Patient { birthDate } } }: the polymorphic resource answers the fields of its type', async () => {
    const { data, errors } = await query(
      'query ($ep: ID) { Observation(id: "bp", _endpoint: $ep) { subject { reference resource { resourceType ... on Patient { birthDate name(use: official) { family } } } } } }',
    );
    expect(errors).toBeUndefined();
    expect(data.Observation.subject).toEqual({ reference: 'Patient/example', resource: { resourceType: 'Patient', birthDate: '1974-12-25', name: [{ family: 'Chalmers' }] } });
  });

  test('resource(type: Patient) follows a reference to a Patient, and resource(type: Organization) on it gives null', async () => {
    const { data, errors } = await query(
      `query ($ep: ID) { Observation(id: "bp", _endpoint: $ep) { subject {
        patient: resource(type: Patient) { id ... on Patient { managingOrganization { resource(type: Organization) { ... on Organization { name } } } } }
        organization: resource(type: Organization) { id }
      } } }`,
    );
    expect(errors).toBeUndefined();
    expect(data.Observation.subject).toEqual({ patient: { id: 'example', managingOrganization: { resource: { name: 'Gastroenterology' } } }, organization: null });
  });
});

describe('$graphql shares the schema', () => {
  test('instance-level $graphql takes the same list arguments', async () => {
    const text = '{ name(use: official) { family } telecom(fhirpath: "use = \'home\'") { value } }';
    const res = await t.fetch(`Patient/example/$graphql?query=${encodeURIComponent(text)}`);
    expect(res.status).toBe(200);
    expect(((await res.json()) as Json).data).toEqual({ name: [{ family: 'Chalmers' }], telecom: [{ value: 'peter@example.org' }] });
  });
});
