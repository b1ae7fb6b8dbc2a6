import { gql } from '@apollo/client/core';
import { graphqlClient } from '../graphql/client';
import { aggregatedPatient } from '../support/accessModel';
import { runAdminCli } from '../support/runCli';
import { startTestServer, type TestServer } from '../support/testServer';

const admin = runAdminCli;

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => server.close());

test('customer, endpoint and client created by the CLI give a working token and endpoint', async () => {
  const customer = await admin(server, 'customer', 'create', '--name', 'St Elsewhere');
  expect(customer.code).toBe(0);
  const { id: customerId, name } = JSON.parse(customer.stdout);
  expect(name).toBe('St Elsewhere');

  const endpoint = await admin(server, 'endpoint', 'create', '--customer', customerId, '--fhir-version', 'R4');
  expect(endpoint.code).toBe(0);
  const { id: endpointId, fhirVersion } = JSON.parse(endpoint.stdout);
  expect(fhirVersion).toBe('R4');

  const client = await admin(server, 'client', 'create', '--customer', customerId, '--family', 'fhir');
  expect(client.code).toBe(0);
  const { client_id, client_secret } = JSON.parse(client.stdout);
  expect(client_secret).toEqual(expect.any(String));

  const token = await server.token(client_id, client_secret);
  const res = await fetch(`${server.url}/fhir/customer/${endpointId}/Patient`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/fhir+json' },
    body: JSON.stringify({ resourceType: 'Patient', gender: 'female' }),
  });
  expect(res.status).toBe(201);

  // The secret is shown once: listing clients never reveals it.
  const list = await admin(server, 'client', 'list', '--customer', customerId);
  expect(list.code).toBe(0);
  expect(list.stdout).not.toContain(client_secret);
}, 120_000);

test('--help lists the commands; a usage mistake exits 2; a refused request exits 1 with the reason', async () => {
  const help = await admin(server, '--help');
  expect(help.code).toBe(0);
  expect(help.stdout).toMatch(/customer create/);
  expect(help.stdout).toMatch(/client create/);

  const usage = await admin(server, 'endpoint', 'create', '--customer', 'x');
  expect(usage.code).toBe(2);
  expect(usage.stderr).toMatch(/fhir-version/);

  const refused = await admin(server, 'endpoint', 'create', '--customer', 'cus-nope', '--fhir-version', 'R4');
  expect(refused.code).toBe(1);
  expect(refused.stderr).toMatch(/cus-nope/);
}, 120_000);

test('consents, withdraw-all, patient access and aggregation status through the CLI', async () => {
  const p = await aggregatedPatient(server, '9000000092');
  const grant = await admin(server, 'consent', 'grant', '--patient', p, '--grantee', 'team-x', '--label', 'MENTAL_HEALTH');
  expect(grant.code).toBe(0);
  const list = JSON.parse((await admin(server, 'consent', 'list', '--patient', p)).stdout);
  expect(list.consents).toMatchObject([{ patientId: p, grantee: 'CareTeam/team-x', labels: ['MENTAL_HEALTH'], status: 'active' }]);
  const byGrantee = JSON.parse((await admin(server, 'consent', 'list', '--grantee', 'CareTeam/team-x')).stdout);
  expect(byGrantee.consents.map((c: { patientId: string }) => c.patientId)).toEqual([p]);
  const bad = await admin(server, 'consent', 'grant', '--patient', p, '--grantee', 'team-x', '--label', 'EVERYTHING');
  expect(bad.code).toBe(1);
  expect(bad.stderr).toContain('label');
  const revoked = JSON.parse((await admin(server, 'consent', 'revoke', '--patient', p, '--grantee', 'team-x', '--label', 'MENTAL_HEALTH')).stdout);
  expect(revoked).toMatchObject({ revoked: true, consent: { status: 'inactive' } });
  await admin(server, 'consent', 'grant', '--patient', p, '--grantee', 'prac-y', '--label', 'SOCIAL_CARE');
  const withdrawn = JSON.parse((await admin(server, 'consent', 'withdraw-all', '--patient', p)).stdout);
  expect(withdrawn.consents).toMatchObject([{ grantee: 'Practitioner/prac-y', status: 'inactive' }]);
  const frozen = JSON.parse((await admin(server, 'consent', 'access', '--patient', p, '--frozen', 'true')).stdout);
  expect(frozen).toEqual({ patientId: p, frozen: true, breakGlass: [] });
  expect(JSON.parse((await admin(server, 'consent', 'access', '--patient', p)).stdout)).toMatchObject({ frozen: true });
  const status = JSON.parse((await admin(server, 'aggregation', 'wait')).stdout);
  expect(status).toMatchObject({ queueDepth: 0, parked: 0 });
}, 120_000);

test('endpoint update and disable, client create with --scopes, rotate-secret and revoke through the CLI', async () => {
  const t = await server.provision();
  const updated = await admin(server, 'endpoint', 'update', '--endpoint', t.endpointId, '--name', 'Pharmacy feed', '--default-source-org', 'Organization/pharm');
  expect(updated.code).toBe(0);
  expect(JSON.parse(updated.stdout)).toMatchObject({ id: t.endpointId, name: 'Pharmacy feed', defaultSourceOrg: 'Organization/pharm', enabled: true });

  const disabled = await admin(server, 'endpoint', 'disable', '--endpoint', t.endpointId);
  expect(disabled.code).toBe(0);
  expect(JSON.parse(disabled.stdout).enabled).toBe(false);
  expect((await t.fetch('Patient')).status).toBe(403);
  const enabled = await admin(server, 'endpoint', 'update', '--endpoint', t.endpointId, '--enabled', 'true');
  expect(JSON.parse(enabled.stdout).enabled).toBe(true);
  expect((await t.fetch('Patient')).status).toBe(200);

  const created = await admin(server, 'client', 'create', '--customer', t.customerId, '--family', 'fhir', '--scopes', 'system/Patient.rs system/Observation.rs');
  expect(created.code).toBe(0);
  const client = JSON.parse(created.stdout);
  expect(client.scopes).toEqual(['system/Patient.rs', 'system/Observation.rs']);
  // --scope, the older spelling, still works.
  const older = await admin(server, 'client', 'create', '--customer', t.customerId, '--family', 'fhir', '--scope', 'system/Patient.rs');
  expect(JSON.parse(older.stdout).scopes).toEqual(['system/Patient.rs']);

  const rotated = await admin(server, 'client', 'rotate-secret', '--client', client.client_id);
  expect(rotated.code).toBe(0);
  const { client_secret } = JSON.parse(rotated.stdout);
  expect(client_secret).not.toBe(client.client_secret);
  await expect(server.token(client.client_id, client.client_secret)).rejects.toThrow(/invalid_client/);
  await server.token(client.client_id, client_secret);

  const revoked = await admin(server, 'client', 'revoke', '--client', client.client_id);
  expect(revoked.code).toBe(0);
  expect(JSON.parse(revoked.stdout).revokedAt).toEqual(expect.any(String));
  await expect(server.token(client.client_id, client_secret)).rejects.toThrow(/revoked/);
  // The positional form older scripts use.
  expect((await admin(server, 'client', 'revoke', JSON.parse(older.stdout).client_id)).code).toBe(0);

  const nothing = await admin(server, 'endpoint', 'update', '--endpoint', t.endpointId);
  expect(nothing.code).toBe(2);
  expect(nothing.stderr).toMatch(/--name, --default-source-org, --enabled/);
}, 180_000);

test('the same bad input gets the same refusal from the CLI, the admin API and GraphQL', async () => {
  const t = await server.provision();
  const graphql = graphqlClient(server.url, server.adminToken);
  const rest = async (method: string, path: string, body: unknown) => {
    const res = await fetch(`${server.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${server.adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const outcome = (await res.json()) as { issue: { diagnostics: string; expression: string[] }[] };
    return { status: res.status, ...outcome.issue[0] };
  };

  const scopes = await rest('POST', '/admin/clients', { customerId: t.customerId, family: 'fhir', scopes: 'bad scope!' });
  expect(scopes).toMatchObject({ status: 400, expression: ['scopes'] });
  const viaCli = await admin(server, 'client', 'create', '--customer', t.customerId, '--family', 'fhir', '--scopes', 'bad scope!');
  expect(viaCli.code).toBe(1);
  expect(viaCli.stderr).toContain(`400: ${scopes.diagnostics} (scopes)`);
  const viaGraphql = await graphql.mutate(
    gql`
      mutation ($c: ID!) {
        adminClientCreate(customerId: $c, family: "fhir", scopes: ["bad scope!"]) {
          clientId
        }
      }
    `,
    { c: t.customerId },
  );
  expect(viaGraphql.errors?.[0].message).toBe(scopes.diagnostics);
  expect(viaGraphql.errors?.[0].extensions).toMatchObject({ status: 400 });

  const org = await rest('PATCH', `/admin/endpoints/${t.endpointId}`, { defaultSourceOrg: 'Patient/1' });
  expect(org).toMatchObject({ status: 400, expression: ['defaultSourceOrg'] });
  const orgCli = await admin(server, 'endpoint', 'update', '--endpoint', t.endpointId, '--default-source-org', 'Patient/1');
  expect(orgCli.code).toBe(1);
  expect(orgCli.stderr).toContain(`400: ${org.diagnostics} (defaultSourceOrg)`);
  const orgGraphql = await graphql.mutate(
    gql`
      mutation ($id: ID!) {
        adminEndpointUpdate(id: $id, defaultSourceOrg: "Patient/1") {
          id
        }
      }
    `,
    { id: t.endpointId },
  );
  expect(orgGraphql.errors?.[0].message).toBe(org.diagnostics);
  const created = await graphql.mutate(
    gql`
      mutation ($c: ID!) {
        adminEndpointCreate(customerId: $c, fhirVersion: "R4", defaultSourceOrg: "Patient/1") {
          id
        }
      }
    `,
    { c: t.customerId },
  );
  expect(created.errors?.[0].message).toBe(org.diagnostics);

  const enabled = await rest('PATCH', `/admin/endpoints/${t.endpointId}`, { enabled: 'maybe' });
  const enabledCli = await admin(server, 'endpoint', 'update', '--endpoint', t.endpointId, '--enabled', 'maybe');
  expect(enabledCli.stderr).toContain(`400: ${enabled.diagnostics} (enabled)`);
}, 180_000);
