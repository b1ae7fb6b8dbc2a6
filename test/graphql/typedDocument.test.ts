import { ApolloClient, HttpLink, InMemoryCache } from '@apollo/client/core';
import { PatientRecordDocument, type PatientRecordQuery } from '../../src/generated/graphql/operations';
import { startTestServer, type TestServer } from '../support/testServer';

/** The codegen-typed patient-record document (test/graphql/patientRecord.graphql) against a running server. */
let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(() => server.close());

test('the typed PatientRecord query returns what its generated types say', async () => {
  const t = await server.provision();
  await t.fetch('Patient/p', {
    method: 'PUT',
    body: JSON.stringify({ resourceType: 'Patient', id: 'p', identifier: [{ system: 'urn:x', value: '1' }], name: [{ family: 'Typed' }] }),
  });
  await t.fetch('Observation/o', {
    method: 'PUT',
    body: JSON.stringify({
      resourceType: 'Observation',
      id: 'o',
      status: 'final',
      code: { text: 'weight' },
      subject: { reference: 'Patient/p' },
      valueQuantity: { value: 70, unit: 'kg' },
    }),
  });
  const client = new ApolloClient({
    link: new HttpLink({ uri: `${server.url}/graphql`, headers: { authorization: `Bearer ${t.token}` }, fetch }),
    cache: new InMemoryCache({ addTypename: false }),
  });
  const result = await client.query<PatientRecordQuery>({ query: PatientRecordDocument, variables: { identifier: 'urn:x|1', endpoint: t.endpointId }, fetchPolicy: 'no-cache' });
  const patient = result.data.PatientList?.[0];
  expect(patient?.name?.[0]?.family).toBe('Typed');
  expect(patient?.ObservationList?.[0]?.valueQuantity?.value).toBe(70);
  expect(patient?.MedicationStatementList).toEqual([]);
});
