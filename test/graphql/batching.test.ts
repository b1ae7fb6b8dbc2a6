import { gql } from '@apollo/client/core';
import { startTestServer, type TestServer } from '../support/testServer';
import { graphqlClient } from './client';

/**
 * Per-request DataLoaders: a patient with N MedicationStatements, each resolving medicationReference and
 * subject, costs the same number of SQL statements whatever N is.
 */
let server: TestServer;
let statements = 0;

beforeAll(async () => {
  // No background worker: its polling would add statements that are not the request's.
  server = await startTestServer({ AGGREGATION_WORKER: 'off' }, { queryEvents: true });
  server.database.db.onQuery(() => statements++);
}, 60_000);
afterAll(() => server.close());

async function statementsFor(n: number): Promise<number> {
  const t = await server.provision();
  const entry = [
    { resource: { resourceType: 'Patient', id: 'p' }, request: { method: 'PUT', url: 'Patient/p' } },
    ...[0, 1, 2].map((m) => ({ resource: { resourceType: 'Medication', id: `m${m}`, code: { text: `med ${m}` } }, request: { method: 'PUT', url: `Medication/m${m}` } })),
    ...Array.from({ length: n }, (_, i) => ({
      resource: { resourceType: 'MedicationStatement', status: 'active', subject: { reference: 'Patient/p' }, medicationReference: { reference: `Medication/m${i % 3}` } },
      request: { method: 'POST', url: 'MedicationStatement' },
    })),
  ];
  const res = await t.fetch('', { method: 'POST', body: JSON.stringify({ resourceType: 'Bundle', type: 'transaction', entry }) });
  expect(res.status).toBe(200);
  const client = graphqlClient(server.url, t.token);
  const query = gql`query ($ep: ID) { Patient(id: "p", _endpoint: $ep) { id MedicationStatementList(_reference: "subject", _count: 1000) { status medicationReference { resource { ... on Medication { code { text } } } } subject { resource { ... on Patient { id } } } } } }`;
  statements = 0;
  const { data, errors } = await client.query(query, { ep: t.endpointId });
  const used = statements;
  expect(errors).toBeUndefined();
  expect(data.Patient.MedicationStatementList).toHaveLength(n);
  expect(data.Patient.MedicationStatementList.every((ms: { subject: { resource: { id: string } } }) => ms.subject.resource.id === 'p')).toBe(true);
  expect(new Set(data.Patient.MedicationStatementList.map((ms: { medicationReference: { resource: { code: { text: string } } } }) => ms.medicationReference.resource.code.text))).toEqual(new Set(['med 0', 'med 1', 'med 2']));
  return used;
}

test('the statement count does not grow with the number of MedicationStatements', async () => {
  const ten = await statementsFor(10);
  const hundred = await statementsFor(100);
  expect(hundred).toBe(ten);
  expect(hundred).toBeLessThanOrEqual(8);
}, 120_000);
