import { gql } from '@apollo/client/core';
import { aggregatedPatient } from '../support/accessModel';
import { startTestServer, type TestServer } from '../support/testServer';
import { graphqlClient } from './client';

/** The GraphQL admin door: the admin API's operations, over the same service, with the admin token. */
type Json = Record<string, any>;
let server: TestServer;
let admin: ReturnType<typeof graphqlClient>;

beforeAll(async () => {
  server = await startTestServer();
  admin = graphqlClient(server.url, server.adminToken);
}, 120_000);
afterAll(() => server.close());

async function mutate(document: ReturnType<typeof gql>, variables?: Json): Promise<Json> {
  const { data, errors } = await admin.mutate(document, variables);
  if (errors?.length) throw new Error(JSON.stringify(errors));
  return data as Json;
}

test('a customer, an endpoint and a client with a name and scopes, whose token reads the endpoint', async () => {
  const { adminCustomerCreate: customer } = await mutate(gql`
    mutation {
      adminCustomerCreate(name: "GraphQL Trust") {
        id
        name
        createdAt
      }
    }
  `);
  expect(Date.parse(customer.createdAt)).not.toBeNaN();
  const { adminEndpointCreate: endpoint } = await mutate(
    gql`
      mutation ($c: ID!) {
        adminEndpointCreate(customerId: $c, fhirVersion: "R4", name: "Main feed") {
          id
          name
          enabled
          defaultSourceOrg
        }
      }
    `,
    { c: customer.id },
  );
  expect(endpoint).toMatchObject({ name: 'Main feed', enabled: true, defaultSourceOrg: null });
  const { adminClientCreate: client } = await mutate(
    gql`
      mutation ($c: ID!) {
        adminClientCreate(customerId: $c, family: "fhir", name: "Patient reader", scopes: ["system/Patient.rs"]) {
          clientId
          name
          scopes
          clientSecret
          revokedAt
        }
      }
    `,
    { c: customer.id },
  );
  expect(client).toMatchObject({ name: 'Patient reader', scopes: ['system/Patient.rs'], revokedAt: null });

  const token = await server.token(client.clientId, client.clientSecret);
  const read = await fetch(`${server.url}/fhir/customer/${endpoint.id}/Patient`, { headers: { authorization: `Bearer ${token}` } });
  expect(read.status).toBe(200);

  const { adminClients } = (
    await admin.query(
      gql`
        query ($c: ID) {
          adminClients(customerId: $c) {
            clientId
            name
            clientSecret
          }
        }
      `,
      { c: customer.id },
    )
  ).data;
  expect(adminClients).toEqual([{ clientId: client.clientId, name: 'Patient reader', clientSecret: null }]);
});

test('endpoint update, disable and enable; a disabled endpoint is refused to its owner', async () => {
  const t = await server.provision();
  const { adminEndpointUpdate: updated } = await mutate(
    gql`
      mutation ($id: ID!) {
        adminEndpointUpdate(id: $id, name: "Renamed", defaultSourceOrg: "Organization/o1") {
          id
          name
          defaultSourceOrg
          enabled
          requeued
        }
      }
    `,
    { id: t.endpointId },
  );
  expect(updated).toEqual({ id: t.endpointId, name: 'Renamed', defaultSourceOrg: 'Organization/o1', enabled: true, requeued: 0 });

  const { adminEndpointDisable: disabled } = await mutate(
    gql`
      mutation ($id: ID!) {
        adminEndpointDisable(id: $id) {
          enabled
          name
        }
      }
    `,
    { id: t.endpointId },
  );
  expect(disabled).toEqual({ enabled: false, name: 'Renamed' });
  expect((await t.fetch('Patient')).status).toBe(403);
  // Through GraphQL too: the same check guards `_endpoint`.
  const viaGraphql = await graphqlClient(server.url, t.token).query(
    gql`
      query ($ep: ID) {
        PatientList(_endpoint: $ep) {
          id
        }
      }
    `,
    { ep: t.endpointId },
  );
  expect(viaGraphql.errors?.[0].extensions).toMatchObject({ status: 403 });

  // Omitted arguments are left alone; an explicit null clears.
  const { adminEndpointUpdate: enabled } = await mutate(
    gql`
      mutation ($id: ID!) {
        adminEndpointUpdate(id: $id, enabled: true, defaultSourceOrg: null) {
          enabled
          name
          defaultSourceOrg
        }
      }
    `,
    {
      id: t.endpointId,
    },
  );
  expect(enabled).toEqual({ enabled: true, name: 'Renamed', defaultSourceOrg: null });
  expect((await t.fetch('Patient')).status).toBe(200);
  const { adminEndpoint } = (
    await admin.query(
      gql`
        query ($id: ID!) {
          adminEndpoint(id: $id) {
            name
            enabled
          }
        }
      `,
      { id: t.endpointId },
    )
  ).data;
  expect(adminEndpoint).toEqual({ name: 'Renamed', enabled: true });
});

test('rotating a client secret and revoking a client', async () => {
  const t = await server.provision();
  const { adminClientRotateSecret: rotated } = await mutate(
    gql`
      mutation ($id: ID!) {
        adminClientRotateSecret(clientId: $id) {
          clientId
          clientSecret
        }
      }
    `,
    { id: t.clientId },
  );
  expect(rotated.clientSecret).not.toBe(t.clientSecret);
  await expect(server.token(t.clientId, t.clientSecret)).rejects.toThrow(/invalid_client/);
  await server.token(t.clientId, rotated.clientSecret);

  const { adminClientRevoke: revoked } = await mutate(
    gql`
      mutation ($id: ID!) {
        adminClientRevoke(clientId: $id) {
          revokedAt
          clientSecret
        }
      }
    `,
    { id: t.clientId },
  );
  expect(Date.parse(revoked.revokedAt)).not.toBeNaN();
  expect(revoked.clientSecret).toBeNull();
  await expect(server.token(t.clientId, rotated.clientSecret)).rejects.toThrow(/revoked/);
  const again = await admin.mutate(
    gql`
      mutation ($id: ID!) {
        adminClientRotateSecret(clientId: $id) {
          clientSecret
        }
      }
    `,
    { id: t.clientId },
  );
  expect(again.errors?.[0].extensions).toMatchObject({ status: 409 });
});

test('consents through GraphQL: grant, list, revoke, and a bad label refused', async () => {
  const p = await aggregatedPatient(server, '9000000091');
  const granted = await mutate(
    gql`
      mutation ($p: ID!) {
        adminConsentGrant(patientId: $p, grantee: "team-g", label: "SOCIAL_CARE") {
          labels
          status
        }
      }
    `,
    { p },
  );
  expect(granted.adminConsentGrant).toEqual({ labels: ['SOCIAL_CARE'], status: 'active' });
  const { adminConsents } = (
    await admin.query(
      gql`
        query ($p: ID!) {
          adminConsents(patientId: $p) {
            patientId
            grantee
            labels
            status
          }
        }
      `,
      { p },
    )
  ).data;
  expect(adminConsents).toEqual([{ patientId: p, grantee: 'CareTeam/team-g', labels: ['SOCIAL_CARE'], status: 'active' }]);
  expect(
    (
      await mutate(
        gql`
          mutation ($p: ID!) {
            adminConsentRevoke(patientId: $p, grantee: "team-g", label: "SOCIAL_CARE")
          }
        `,
        { p },
      )
    ).adminConsentRevoke,
  ).toBe(true);
  const after = (
    await admin.query(
      gql`
        query ($p: ID!) {
          adminConsents(patientId: $p) {
            status
            labels
          }
        }
      `,
      { p },
    )
  ).data.adminConsents;
  expect(after).toEqual([{ status: 'inactive', labels: [] }]);
  const bad = await admin.mutate(
    gql`
      mutation ($p: ID!) {
        adminConsentGrant(patientId: $p, grantee: "team-g", label: "ALL") {
          id
        }
      }
    `,
    { p },
  );
  expect(bad.errors?.[0].extensions).toMatchObject({ status: 400 });
  expect(bad.errors?.[0].message).toMatch(/'label' must be one of/);
  const customer = await admin.mutate(
    gql`
      mutation ($p: ID!) {
        adminConsentGrant(patientId: $p, grantee: "cus-g", label: "SOCIAL_CARE") {
          id
        }
      }
    `,
    { p },
  );
  expect(customer.errors?.[0].message).toMatch(/'grantee' must be a team/);
});

test('admin mutations need the admin token', async () => {
  const t = await server.provision();
  const refused = await graphqlClient(server.url, t.token).mutate(
    gql`
      mutation ($id: ID!) {
        adminEndpointDisable(id: $id) {
          enabled
        }
      }
    `,
    { id: t.endpointId },
  );
  expect(refused.errors?.[0].extensions).toMatchObject({ status: 401 });
  expect((await t.fetch('Patient')).status).toBe(200);
});
