import { gql } from '@apollo/client/core';
import { graphqlClient } from '../graphql/client';
import { runAdminCli } from '../support/runCli';
import { startTestServer, type TestServer } from '../support/testServer';

/**
 * The three admin doors — CLI, admin REST API, GraphQL — over one service: organisations, teams and
 * practitioners are managed through each, and the same bad input is refused with the same words by all three.
 */
type Json = Record<string, any>;
let server: TestServer;
let graphql: ReturnType<typeof graphqlClient>;

beforeAll(async () => {
  server = await startTestServer();
  graphql = graphqlClient(server.url, server.adminToken);
}, 120_000);
afterAll(() => server.close());

async function cli(...args: string[]): Promise<Json> {
  const run = await runAdminCli(server, ...args);
  if (run.code !== 0) throw new Error(`${args.join(' ')} → ${run.code}: ${run.stderr}`);
  return JSON.parse(run.stdout) as Json;
}

async function rest(method: string, path: string, body: unknown): Promise<{ status: number; diagnostics: string; expression?: string[] }> {
  const res = await fetch(`${server.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${server.adminToken}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const outcome = (await res.json()) as { issue: { diagnostics: string; expression?: string[] }[] };
  return { status: res.status, ...outcome.issue[0] };
}

test('the CLI creates an organisation, a team with a member, and a client bound to the team', async () => {
  const customer = await cli('customer', 'create', '--name', 'CLI Health');
  const organization = await cli('organization', 'create', '--customer', customer.id, '--name', 'CLI Ward');
  expect(organization.publicId).toEqual(expect.any(String));
  const team = await cli('team', 'create', '--organization', organization.id, '--name', 'Ward team', '--alias', 'ward');
  const practitioner = await cli('practitioner', 'create', '--organization', organization.id, '--name', 'Dr C');
  expect((await cli('team', 'add-member', '--team', team.id, '--practitioner', practitioner.id)).practitionerIds).toEqual([practitioner.id]);
  expect((await cli('team', 'update', '--team', team.id, '--alias', '')).alias).toBeNull();
  expect((await cli('team', 'list', '--organization', organization.id)).teams.map((t: Json) => t.id)).toEqual([organization.defaultTeamId, team.id]);
  expect((await cli('practitioner', 'list', '--organization', organization.id)).practitioners).toEqual([expect.objectContaining({ id: practitioner.id, teamIds: [team.id] })]);
  expect((await cli('organization', 'list', '--customer', customer.id)).organizations).toHaveLength(2);

  const client = await cli('client', 'create', '--organization', organization.id, '--team', team.id, '--family', 'fhir');
  expect(client).toMatchObject({ customerId: customer.id, organizationId: organization.id, teamId: team.id });
  const token = await server.token(client.client_id, client.client_secret);
  expect(server.tokens.verify('fhir', token)).toMatchObject({ organizationId: organization.id, teamId: team.id });

  expect((await cli('team', 'disable', '--team', team.id)).disabledAt).toEqual(expect.any(String));
  await expect(server.token(client.client_id, client.client_secret)).rejects.toThrow(/team this client acts for is disabled/);
  expect((await cli('practitioner', 'disable', '--practitioner', practitioner.id)).disabledAt).toEqual(expect.any(String));
  expect((await cli('organization', 'disable', '--organization', organization.id)).disabledAt).toEqual(expect.any(String));
}, 180_000);

test('GraphQL manages organisations, teams and practitioners and binds a client', async () => {
  const { data } = await graphql.mutate(gql`
    mutation {
      adminCustomerCreate(name: "GraphQL Health") {
        id
        defaultOrganizationId
      }
    }
  `);
  const organizationId = data!.adminCustomerCreate.defaultOrganizationId;
  const team = (
    await graphql.mutate(
      gql`
        mutation ($o: ID!) {
          adminTeamCreate(organizationId: $o, name: "UI", alias: "ui") {
            id
            alias
          }
        }
      `,
      { o: organizationId },
    )
  ).data!.adminTeamCreate;
  const practitioner = (
    await graphql.mutate(
      gql`
        mutation ($o: ID!) {
          adminPractitionerCreate(organizationId: $o, name: "Dr G") {
            id
          }
        }
      `,
      { o: organizationId },
    )
  ).data!.adminPractitionerCreate;
  const member = await graphql.mutate(
    gql`
      mutation ($t: ID!, $p: ID!) {
        adminTeamAddMember(teamId: $t, practitionerId: $p) {
          practitionerIds
        }
      }
    `,
    { t: team.id, p: practitioner.id },
  );
  expect(member.data!.adminTeamAddMember.practitionerIds).toEqual([practitioner.id]);
  const client = await graphql.mutate(
    gql`
      mutation ($o: ID!, $p: ID!) {
        adminClientCreate(organizationId: $o, practitionerId: $p, family: "fhir") {
          clientId
          customerId
          organizationId
          teamId
          practitionerId
        }
      }
    `,
    { o: organizationId, p: practitioner.id },
  );
  expect(client.data!.adminClientCreate).toMatchObject({ customerId: data!.adminCustomerCreate.id, organizationId, teamId: null, practitionerId: practitioner.id });

  const listed = await graphql.query(
    gql`
      query ($o: ID) {
        adminTeams(organizationId: $o) {
          id
          alias
          practitionerIds
        }
        adminPractitioners(organizationId: $o) {
          id
          teamIds
        }
      }
    `,
    { o: organizationId },
  );
  expect(listed.data.adminTeams.map((t: Json) => t.alias)).toEqual([null, 'ui']);
  expect(listed.data.adminPractitioners).toEqual([{ id: practitioner.id, teamIds: [team.id] }]);
  const disabled = await graphql.mutate(
    gql`
      mutation ($o: ID!) {
        adminOrganizationDisable(id: $o) {
          disabledAt
        }
      }
    `,
    { o: organizationId },
  );
  expect(disabled.data!.adminOrganizationDisable.disabledAt).toEqual(expect.any(String));

  // Not for tenants' tokens.
  const tenant = await server.provision();
  const asTenant = await graphqlClient(server.url, tenant.token).query(gql`
    query {
      adminOrganizations {
        id
      }
    }
  `);
  expect(asTenant.errors?.[0].extensions).toMatchObject({ status: 401 });
});

test('the same bad input gets the same refusal from the CLI, the admin API and GraphQL', async () => {
  const a = await cli('customer', 'create', '--name', 'A');
  const other = await cli('organization', 'create', '--customer', a.id, '--name', 'Other');
  const foreignTeam = await cli('team', 'create', '--organization', other.id, '--name', 'Foreign');
  const practitioner = await cli('practitioner', 'create', '--organization', a.defaultOrganizationId, '--name', 'P');

  // A team of another organisation than the client's.
  const team = await rest('POST', '/admin/clients', { customerId: a.id, teamId: foreignTeam.id, family: 'fhir' });
  expect(team).toMatchObject({ status: 400, expression: ['teamId'] });
  const teamCli = await runAdminCli(server, 'client', 'create', '--customer', a.id, '--team', foreignTeam.id, '--family', 'fhir');
  expect(teamCli.code).toBe(1);
  expect(teamCli.stderr).toContain(`400: ${team.diagnostics} (teamId)`);
  const teamGraphql = await graphql.mutate(
    gql`
      mutation ($c: ID!, $t: ID!) {
        adminClientCreate(customerId: $c, teamId: $t, family: "fhir") {
          clientId
        }
      }
    `,
    { c: a.id, t: foreignTeam.id },
  );
  expect(teamGraphql.errors?.[0].message).toBe(team.diagnostics);
  expect(teamGraphql.errors?.[0].extensions).toMatchObject({ status: 400 });

  // A practitioner joining a team of another organisation.
  const member = await rest('POST', `/admin/teams/${foreignTeam.id}/members`, { practitionerId: practitioner.id });
  expect(member).toMatchObject({ status: 400, expression: ['practitionerId'] });
  const memberCli = await runAdminCli(server, 'team', 'add-member', '--team', foreignTeam.id, '--practitioner', practitioner.id);
  expect(memberCli.stderr).toContain(`400: ${member.diagnostics} (practitionerId)`);
  const memberGraphql = await graphql.mutate(
    gql`
      mutation ($t: ID!, $p: ID!) {
        adminTeamAddMember(teamId: $t, practitionerId: $p) {
          id
        }
      }
    `,
    { t: foreignTeam.id, p: practitioner.id },
  );
  expect(memberGraphql.errors?.[0].message).toBe(member.diagnostics);

  // A malformed alias.
  const alias = await rest('POST', '/admin/teams', { organizationId: other.id, name: 'X', alias: 'no spaces please' });
  expect(alias).toMatchObject({ status: 400, expression: ['alias'] });
  const aliasCli = await runAdminCli(server, 'team', 'create', '--organization', other.id, '--name', 'X', '--alias', 'no spaces please');
  expect(aliasCli.stderr).toContain(`400: ${alias.diagnostics} (alias)`);
  const aliasGraphql = await graphql.mutate(
    gql`
      mutation ($o: ID!) {
        adminTeamCreate(organizationId: $o, name: "X", alias: "no spaces please") {
          id
        }
      }
    `,
    { o: other.id },
  );
  expect(aliasGraphql.errors?.[0].message).toBe(alias.diagnostics);

  // A missing name.
  const name = await rest('POST', '/admin/practitioners', { organizationId: other.id });
  expect(name).toMatchObject({ status: 400, diagnostics: `'name' is required` });
  const nameCli = await runAdminCli(server, 'practitioner', 'create', '--organization', other.id);
  expect(nameCli.stderr).toContain(`400: ${name.diagnostics} (name)`);
  const nameGraphql = await graphql.mutate(
    gql`
      mutation ($o: ID!) {
        adminPractitionerCreate(organizationId: $o, name: "  ") {
          id
        }
      }
    `,
    { o: other.id },
  );
  expect(nameGraphql.errors?.[0].extensions).toMatchObject({ status: 400 });
}, 180_000);
