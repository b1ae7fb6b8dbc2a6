import { gql } from '@apollo/client/core';
import { startTestServer, type TestServer } from '../support/testServer';
import { graphqlClient } from './client';

/**
 * Per-request DataLoaders: a patient with N MedicationStatements, each resolving medicationReference and
 * subject, costs the same number of SQL statements whatever N is; so does a list of N patients, each with
 * its reverse references.
 */
let server: TestServer;
let statements = 0;

beforeAll(async () => {
  // No background worker: its polling would add statements that are not the request's.
  server = await startTestServer({ AGGREGATION_WORKER: 'off' }, { queryEvents: true });
  // The audit log's writes are left out: it group-commits the events of concurrent calls, so how many INSERTs
  // one request shares varies with timing (its cost is measured in the read bench, with audit on and off).
  server.database.db.onQuery((sql) => {
    if (!/\baudit_event\b/.test(sql)) statements++;
  });
  // The schema is built on the first GraphQL request (seconds on a loaded machine): build it now, so that the
  // counted requests are not long enough for the statements of earlier writes' follow-ups to fall inside.
  const t = await server.provision();
  await graphqlClient(server.url, t.token).query(gql`
    {
      __typename
    }
  `);
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
  const query = gql`
    query ($ep: ID) {
      Patient(id: "p", _endpoint: $ep) {
        id
        MedicationStatementList(_reference: subject, _count: 1000) {
          status
          medicationReference {
            resource {
              ... on Medication {
                code {
                  text
                }
              }
            }
          }
          subject {
            resource {
              ... on Patient {
                id
              }
            }
          }
        }
      }
    }
  `;
  statements = 0;
  const { data, errors } = await client.query(query, { ep: t.endpointId });
  const used = statements;
  expect(errors).toBeUndefined();
  expect(data.Patient.MedicationStatementList).toHaveLength(n);
  expect(data.Patient.MedicationStatementList.every((ms: { subject: { resource: { id: string } } }) => ms.subject.resource.id === 'p')).toBe(true);
  expect(
    new Set(data.Patient.MedicationStatementList.map((ms: { medicationReference: { resource: { code: { text: string } } } }) => ms.medicationReference.resource.code.text)),
  ).toEqual(new Set(['med 0', 'med 1', 'med 2']));
  return used;
}

test('the statement count does not grow with the number of MedicationStatements', async () => {
  const ten = await statementsFor(10);
  const hundred = await statementsFor(100);
  expect(hundred).toBe(ten);
  expect(hundred).toBeLessThanOrEqual(8);
}, 120_000);

async function statementsForPatients(n: number): Promise<number> {
  const t = await server.provision();
  const entry = Array.from({ length: n }, (_, i) => [
    {
      resource: { resourceType: 'Patient', id: `p${i}`, identifier: [{ system: 'urn:cohort', value: 'x' }], generalPractitioner: [{ reference: 'Practitioner/dr' }] },
      request: { method: 'PUT', url: `Patient/p${i}` },
    },
    ...[0, 1].map((j) => ({
      resource: { resourceType: 'Observation', status: 'final', code: { text: `obs ${i}.${j}` }, subject: { reference: `Patient/p${i}` } },
      request: { method: 'POST', url: 'Observation' },
    })),
  ]).flat();
  entry.push({ resource: { resourceType: 'Practitioner', id: 'dr', name: [{ family: 'Shared' }] } as never, request: { method: 'PUT', url: 'Practitioner/dr' } });
  const res = await t.fetch('', { method: 'POST', body: JSON.stringify({ resourceType: 'Bundle', type: 'transaction', entry }) });
  expect(res.status).toBe(200);
  const client = graphqlClient(server.url, t.token);
  const query = gql`
    query ($ep: ID) {
      PatientList(identifier: "urn:cohort|x", _endpoint: $ep) {
        id
        generalPractitioner {
          resource {
            ... on Practitioner {
              name {
                family
              }
            }
          }
        }
        ObservationList(_reference: subject) {
          code {
            text
          }
          subject {
            reference
          }
        }
      }
    }
  `;
  statements = 0;
  const { data, errors } = await client.query(query, { ep: t.endpointId });
  const used = statements;
  expect(errors).toBeUndefined();
  expect(data.PatientList).toHaveLength(n);
  for (const p of data.PatientList) {
    expect(p.generalPractitioner[0].resource.name[0].family).toBe('Shared');
    expect(p.ObservationList.map((o: { subject: { reference: string } }) => o.subject.reference)).toEqual([`Patient/${p.id}`, `Patient/${p.id}`]);
  }
  return used;
}

test('a list of patients with their reverse references costs the same statements for 3 or 30 patients', async () => {
  const three = await statementsForPatients(3);
  const thirty = await statementsForPatients(30);
  expect(thirty).toBe(three);
}, 120_000);
