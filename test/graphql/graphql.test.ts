import { gql } from '@apollo/client/core';
import { startTestServer, type Tenant, type TestServer } from '../support/testServer';
import { graphqlClient } from './client';

type Json = Record<string, any>;
const NHS = 'https://fhir.nhs.uk/Id/nhs-number';
let server: TestServer;
let t: Tenant;
let client: ReturnType<typeof graphqlClient>;

async function put(resource: Json) {
  const res = await t.fetch(`${resource.resourceType}/${resource.id}`, { method: 'PUT', body: JSON.stringify(resource) });
  if (res.status >= 300) throw new Error(await res.text());
}

beforeAll(async () => {
  server = await startTestServer();
  t = await server.provision({ defaultSourceOrg: 'Organization/org1' });
  client = graphqlClient(server.url, t.token);
  await put({ resourceType: 'Organization', id: 'org1', identifier: [{ system: 'ods', value: 'O1' }], name: 'Org One' });
  await put({
    resourceType: 'Patient',
    id: 'p1',
    identifier: [{ system: NHS, value: '9000000009' }],
    name: [{ family: 'Smith', given: ['Ann'] }],
    gender: 'female',
    birthDate: '1970-01-01',
    _birthDate: { extension: [{ url: 'https://example.org/accuracy', valueString: 'estimated' }] },
    extension: [
      { url: 'https://example.org/a', valueString: 'A' },
      { url: 'https://example.org/b', valueString: 'B' },
    ],
  });
  await put({ resourceType: 'Medication', id: 'm1', code: { coding: [{ system: 'http://snomed.info/sct', code: '1', display: 'Aspirin' }] } });
  for (let i = 0; i < 5; i++) {
    await put({ resourceType: 'MedicationStatement', id: `ms${i}`, status: 'active', subject: { reference: 'Patient/p1' }, medicationReference: { reference: 'Medication/m1' } });
    await put({
      resourceType: 'Observation',
      id: `o${i}`,
      status: 'final',
      code: { text: `obs ${i}` },
      subject: { reference: 'Patient/p1' },
      valueQuantity: { value: 60 + i, unit: 'kg' },
    });
  }
  await server.waitForAggregation();
}, 120_000);
afterAll(() => server.close());

describe('HL7 FHIR GraphQL on a customer endpoint', () => {
  test('read by id with choice types, primitive extensions and extension(url:) filtering', async () => {
    const { data, errors } = await client.query(
      gql`
        query ($ep: ID) {
          Patient(id: "p1", _endpoint: $ep) {
            id
            resourceType
            gender
            birthDate
            _birthDate {
              extension {
                url
                valueString
              }
            }
            name {
              family
              given
            }
            extension(url: "https://example.org/b") {
              valueString
            }
          }
        }
      `,
      { ep: t.endpointId },
    );
    expect(errors).toBeUndefined();
    expect(data.Patient).toEqual({
      id: 'p1',
      resourceType: 'Patient',
      gender: 'female',
      birthDate: '1970-01-01',
      _birthDate: { extension: [{ url: 'https://example.org/accuracy', valueString: 'estimated' }] },
      name: [{ family: 'Smith', given: ['Ann'] }],
      extension: [{ valueString: 'B' }],
    });
  });

  test('PatientList with search parameters, Connection paging, reverse references and Reference.resource', async () => {
    const { data } = await client.query(
      gql`
        query ($ep: ID) {
          PatientList(identifier: "https://fhir.nhs.uk/Id/nhs-number|9000000009", _endpoint: $ep) {
            id
            ObservationList(_reference: subject, _count: 10) {
              valueQuantity {
                value
              }
              subject {
                resource(type: Patient) {
                  ... on Patient {
                    gender
                  }
                }
              }
            }
          }
          ObservationConnection(subject: "Patient/p1", _count: 2, _endpoint: $ep) {
            count
            pagesize
            next
            edges {
              mode
              resource {
                id
              }
            }
          }
        }
      `,
      { ep: t.endpointId },
    );
    expect(data.PatientList).toHaveLength(1);
    expect(data.PatientList[0].ObservationList.map((o: Json) => o.valueQuantity.value).sort()).toEqual([60, 61, 62, 63, 64]);
    expect(data.PatientList[0].ObservationList[0].subject.resource).toEqual({ gender: 'female' });
    expect(data.ObservationConnection).toMatchObject({ count: 5, pagesize: 2 });
    expect(data.ObservationConnection.edges).toHaveLength(2);
    const next = await client.query(
      gql`
        query ($ep: ID, $c: String) {
          ObservationConnection(subject: "Patient/p1", _count: 2, _cursor: $c, _endpoint: $ep) {
            edges {
              resource {
                id
              }
            }
          }
        }
      `,
      {
        ep: t.endpointId,
        c: data.ObservationConnection.next,
      },
    );
    const firstIds = data.ObservationConnection.edges.map((e: Json) => e.resource.id);
    const nextIds = next.data.ObservationConnection.edges.map((e: Json) => e.resource.id);
    expect(nextIds).toHaveLength(2);
    expect(nextIds.some((id: string) => firstIds.includes(id))).toBe(false);
    // A List given the cursor carries on to the end.
    const rest = await client.query(
      gql`
        query ($ep: ID, $c: String) {
          ObservationList(subject: "Patient/p1", _cursor: $c, _endpoint: $ep) {
            id
          }
        }
      `,
      { ep: t.endpointId, c: data.ObservationConnection.next },
    );
    expect(rest.data.ObservationList.map((o: Json) => o.id).sort()).toEqual(['o0', 'o1', 'o2', 'o3', 'o4'].filter((id) => !firstIds.includes(id)));
  });

  test('mutations create, update and delete with REST validation', async () => {
    const created = await client.mutate(
      gql`
        mutation ($ep: ID) {
          PatientCreate(res: { gender: "male", name: [{ family: "New" }], managingOrganization: { reference: "Organization/org1" } }, _endpoint: $ep) {
            id
            gender
            managingOrganization {
              resource {
                ... on Organization {
                  name
                }
              }
            }
          }
        }
      `,
      { ep: t.endpointId },
    );
    expect(created.errors).toBeUndefined();
    const id = created.data!.PatientCreate.id;
    expect(created.data!.PatientCreate.gender).toBe('male');
    // The created resource's references resolve on the endpoint it was written to.
    expect(created.data!.PatientCreate.managingOrganization.resource).toEqual({ name: 'Org One' });
    const updated = await client.mutate(
      gql`
        mutation ($ep: ID, $id: ID!) {
          PatientUpdate(id: $id, res: { id: $id, gender: "other" }, _endpoint: $ep) {
            id
            gender
          }
        }
      `,
      { ep: t.endpointId, id },
    );
    expect(updated.data!.PatientUpdate).toEqual({ id, gender: 'other' });
    const invalid = await client.mutate(
      gql`
        mutation ($ep: ID) {
          PatientCreate(res: { gender: "robot" }, _endpoint: $ep) {
            id
          }
        }
      `,
      { ep: t.endpointId },
    );
    expect(invalid.errors?.[0].extensions).toMatchObject({ status: 400, resource: { resourceType: 'OperationOutcome' } });
    expect(JSON.stringify(invalid.errors?.[0].extensions)).toContain('Patient.gender');
    await client.mutate(
      gql`
        mutation ($ep: ID, $id: ID!) {
          PatientDelete(id: $id, _endpoint: $ep) {
            issue {
              diagnostics
            }
          }
        }
      `,
      { ep: t.endpointId, id },
    );
    expect((await t.fetch(`Patient/${id}`)).status).toBe(410);
    const readOnly = await client.mutate(gql`
      mutation {
        PatientCreate(res: { gender: "male" }) {
          id
        }
      }
    `);
    expect(readOnly.errors?.[0].message).toMatch(/read-only/);
  });

  test("another customer's endpoint is not found", async () => {
    const other = await server.provision();
    const { errors } = await graphqlClient(server.url, other.token).query(
      gql`
        query ($ep: ID) {
          Patient(id: "p1", _endpoint: $ep) {
            id
          }
        }
      `,
      { ep: t.endpointId },
    );
    expect(errors?.[0].extensions).toMatchObject({ status: 404 });
  });
});

describe('aggregated data, $graphql and directives', () => {
  const recordQuery = `{
    PatientList(identifier: "${NHS}|9000000009") {
      id
      MedicationStatementList(_reference: subject) { id medicationReference { resource { ... on Medication { code { text coding { display } } } } } subject { reference } }
    }
  }`;

  test('the patient-record query over the aggregated record, and the same through $graphql', async () => {
    const viaGraphql = await client.query(gql(recordQuery));
    expect(viaGraphql.errors).toBeUndefined();
    const patients = viaGraphql.data.PatientList;
    expect(patients).toHaveLength(1);
    expect(patients[0].MedicationStatementList).toHaveLength(5);
    expect(patients[0].MedicationStatementList[0].medicationReference.resource.code.coding[0].display).toBe('Aspirin');
    expect(patients[0].MedicationStatementList[0].subject.reference).toBe(`Patient/${patients[0].id}`);
    const res = await server.aggregated(t, '$graphql', { method: 'POST', body: JSON.stringify({ query: recordQuery }) });
    expect(res.status).toBe(200);
    expect(((await res.json()) as Json).data).toEqual(viaGraphql.data);
    const get = await server.aggregated(t, `$graphql?query=${encodeURIComponent(recordQuery)}`);
    expect(((await get.json()) as Json).data).toEqual(viaGraphql.data);
  });

  test('instance-level $graphql on both doors', async () => {
    const res = await t.fetch(`Patient/p1/$graphql?query=${encodeURIComponent('{ id name { family } }')}`);
    expect(((await res.json()) as Json).data).toEqual({ id: 'p1', name: [{ family: 'Smith' }] });
    const aggId = (await client.query(gql(recordQuery))).data.PatientList[0].id;
    const agg = await server.aggregated(t, `Patient/${aggId}/$graphql?query=${encodeURIComponent('{ gender }')}`);
    expect(((await agg.json()) as Json).data).toEqual({ gender: 'female' });
  });

  test('@first, @singleton and @flatten shape the output', async () => {
    const { data } = await client.query(
      gql`
        query ($ep: ID) {
          Patient(id: "p1", _endpoint: $ep) {
            name @first {
              family
            }
            identifier @flatten {
              system
              value
            }
          }
        }
      `,
      { ep: t.endpointId },
    );
    expect(data.Patient).toEqual({ name: { family: 'Smith' }, system: [NHS], value: ['9000000009'] });
  });

  test('unsupported aggregated types list empty; limits refuse a query before it runs', async () => {
    const { data } = await client.query(gql`
      {
        ClaimList {
          id
        }
      }
    `);
    expect(data.ClaimList).toEqual([]);
    const deep = await fetch(`${server.url}/graphql`, {
      method: 'POST',
      headers: { authorization: `Bearer ${t.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        query: `{ ${Array.from({ length: 30 }, (_, i) => `a${i}: PatientList { id }`).join(' ')} ${Array.from({ length: 30 }, (_, i) => `b${i}: PatientList { id }`).join(' ')} }`,
      }),
    });
    const body = (await deep.json()) as Json;
    expect(body.errors[0].message).toMatch(/aliases is 60, over the limit of 50/);
    expect(body.data).toBeUndefined();
  });

  test('responses, results and errors alike, tell caches not to store them', async () => {
    const post = (query: string) =>
      fetch(`${server.url}/graphql`, { method: 'POST', headers: { authorization: `Bearer ${t.token}`, 'content-type': 'application/json' }, body: JSON.stringify({ query }) });
    const ok = await post(`{ Patient(id: "p1", _endpoint: "${t.endpointId}") { id } }`);
    expect(ok.status).toBe(200);
    expect(ok.headers.get('cache-control')).toBe('no-store');
    const failed = await post('{ Patient { id } }');
    expect(failed.status).toBe(400);
    expect(failed.headers.get('cache-control')).toBe('no-store');
  });

  test('no token → 401', async () => {
    const res = await fetch(`${server.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ PatientList { id } }' }),
    });
    expect(res.status).toBe(401);
  });
});

describe('aggregation views and admin operations (type-graphql)', () => {
  test('an aggregated Patient shows its upstream members, grouping rule and element provenance', async () => {
    const id = (await client.query(gql`{ PatientList(identifier: "${NHS}|9000000009") { id } }`)).data.PatientList[0].id;
    const { data, errors } = await client.query(
      gql`
        query ($id: ID!) {
          aggregation(resourceType: "Patient", id: $id) {
            rule
            members {
              endpoint
              customer
              upstreamId
              upstreamVersion
            }
            elementSources {
              element
              upstreamId
            }
          }
        }
      `,
      { id },
    );
    expect(errors).toBeUndefined();
    expect(data.aggregation.rule).toBe('grouped by identifier');
    expect(data.aggregation.members).toEqual([{ endpoint: t.endpointId, customer: t.customerId, upstreamId: 'p1', upstreamVersion: 1 }]);
    expect(data.aggregation.elementSources).toEqual(
      expect.arrayContaining([
        { element: 'gender', upstreamId: 'p1' },
        { element: 'birthDate', upstreamId: 'p1' },
      ]),
    );
  });

  test('aggregation status of an upstream resource, for its owner only', async () => {
    await put({ resourceType: 'MedicationStatement', id: 'bad', status: 'active', subject: { display: 'no reference' }, medicationCodeableConcept: { text: 'x' } });
    await server.waitForAggregation();
    const { data } = await client.query(
      gql`
        query ($ep: ID!) {
          aggregationStatus(endpoint: $ep, resourceType: "MedicationStatement", id: "bad") {
            status
            reason
            expression
          }
        }
      `,
      { ep: t.endpointId },
    );
    expect(data.aggregationStatus).toMatchObject({ status: 'excluded', expression: 'MedicationStatement.subject' });
    const other = await server.provision();
    const refused = await graphqlClient(server.url, other.token).query(
      gql`
        query ($ep: ID!) {
          aggregationStatus(endpoint: $ep, resourceType: "MedicationStatement", id: "bad") {
            status
          }
        }
      `,
      { ep: t.endpointId },
    );
    expect(refused.errors?.[0].extensions).toMatchObject({ status: 404 });
  });

  test('admin queries and mutations need the admin token', async () => {
    const adminClient = graphqlClient(server.url, server.adminToken);
    const created = await adminClient.mutate(gql`
      mutation {
        adminCustomerCreate(name: "Via GraphQL") {
          id
          name
        }
      }
    `);
    expect(created.data!.adminCustomerCreate.name).toBe('Via GraphQL');
    const endpoint = await adminClient.mutate(
      gql`
        mutation ($c: ID!) {
          adminEndpointCreate(customerId: $c, fhirVersion: "R4") {
            id
            fhirVersion
          }
        }
      `,
      { c: created.data!.adminCustomerCreate.id },
    );
    expect(endpoint.data!.adminEndpointCreate.fhirVersion).toBe('R4');
    const customers = await adminClient.query(gql`
      {
        adminCustomers {
          name
        }
      }
    `);
    expect(customers.data.adminCustomers.map((c: Json) => c.name)).toContain('Via GraphQL');
    const refused = await client.query(gql`
      {
        adminCustomers {
          name
        }
      }
    `);
    expect(refused.errors?.[0].extensions).toMatchObject({ status: 401 });
  });
});
