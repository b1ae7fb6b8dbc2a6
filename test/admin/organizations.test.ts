import { startTestServer, type TestServer } from '../support/testServer';

/**
 * Who acts inside a customer (issue 13): organisations, their teams and practitioners, and API clients that
 * act for an organisation, bound to one of its teams or practitioners; through the admin API, as a user sees it.
 */
type Json = Record<string, any>;
let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
}, 120_000);
afterAll(() => server.close());

/** An admin API call that may be refused: its status and JSON body. */
async function call(method: string, path: string, body?: unknown): Promise<{ status: number; body: Json }> {
  const res = await fetch(`${server.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${server.adminToken}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Json };
}

const claims = (token: string): Json => JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8'));

test('a new customer comes with a default organisation and team, and its clients act for that organisation', async () => {
  const customer = await server.admin<Json>('POST', '/admin/customers', { name: 'Riverside Health' });
  expect(customer.defaultOrganizationId).toMatch(/^org-[a-z2-7]{16}$/);
  const organization = await server.admin<Json>('GET', `/admin/organizations/${customer.defaultOrganizationId}`);
  expect(organization).toMatchObject({ customerId: customer.id, name: 'Riverside Health', disabledAt: null });
  expect(organization.publicId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  const { teams } = await server.admin<Json>('GET', `/admin/teams?organizationId=${organization.id}`);
  expect(teams).toEqual([expect.objectContaining({ id: organization.defaultTeamId, name: 'Default team', alias: null, practitionerIds: [] })]);

  const client = await server.admin<Json>('POST', '/admin/clients', { customerId: customer.id, family: 'fhir' });
  expect(client).toMatchObject({ customerId: customer.id, organizationId: organization.id, teamId: null, practitionerId: null });
  const token = await server.token(client.client_id, client.client_secret);
  expect(claims(token)).toMatchObject({ org: organization.id, customer_id: customer.id });
  expect(claims(token)).not.toHaveProperty('team');
  // The server reads the claims back into the caller.
  expect(server.tokens.verify('fhir', token)).toMatchObject({ organizationId: organization.id, customerId: customer.id });
});

test('organisations, teams, members and practitioners are created, listed, updated and disabled', async () => {
  const customer = await server.admin<Json>('POST', '/admin/customers', { name: 'Hillside' });
  const ward = await server.admin<Json>('POST', '/admin/organizations', { customerId: customer.id, name: 'Hillside Ward 4' });
  expect(ward.defaultTeamId).toMatch(/^team-/);
  const { organizations } = await server.admin<Json>('GET', `/admin/organizations?customerId=${customer.id}`);
  expect(organizations.map((o: Json) => o.id)).toEqual([customer.defaultOrganizationId, ward.id]);
  expect(new Set(organizations.map((o: Json) => o.publicId)).size).toBe(2);

  const nurses = await server.admin<Json>('POST', '/admin/teams', { organizationId: ward.id, name: 'Nurses', alias: 'nurses' });
  const taken = await call('POST', '/admin/teams', { organizationId: ward.id, name: 'Night nurses', alias: 'nurses' });
  expect(taken.status).toBe(409);
  expect(taken.body.issue[0].diagnostics).toMatch(/already has a team with alias 'nurses'/);
  // An alias is unique within its organisation only.
  expect((await call('POST', '/admin/teams', { organizationId: customer.defaultOrganizationId, name: 'Nurses', alias: 'nurses' })).status).toBe(201);

  const ann = await server.admin<Json>('POST', '/admin/practitioners', { organizationId: ward.id, name: 'Dr Ann Smith' });
  expect(ann).toMatchObject({ id: expect.stringMatching(/^prac-/), organizationId: ward.id, teamIds: [] });
  const joined = await server.admin<Json>('POST', `/admin/teams/${nurses.id}/members`, { practitionerId: ann.id });
  expect(joined.practitionerIds).toEqual([ann.id]);
  expect((await server.admin<Json>('POST', `/admin/teams/${nurses.id}/members`, { practitionerId: ann.id })).practitionerIds).toEqual([ann.id]);
  expect((await server.admin<Json>('GET', `/admin/practitioners/${ann.id}`)).teamIds).toEqual([nurses.id]);

  const renamed = await server.admin<Json>('PATCH', `/admin/teams/${nurses.id}`, { name: 'Ward nurses', alias: null });
  expect(renamed).toMatchObject({ name: 'Ward nurses', alias: null });
  expect((await server.admin<Json>('PATCH', `/admin/practitioners/${ann.id}`, { name: 'Dr Ann Jones' })).name).toBe('Dr Ann Jones');
  expect((await server.admin<Json>('PATCH', `/admin/organizations/${ward.id}`, { name: 'Ward 4' })).name).toBe('Ward 4');
  expect((await call('PATCH', `/admin/teams/${nurses.id}`, {})).status).toBe(400);

  const left = await server.admin<Json>('DELETE', `/admin/teams/${nurses.id}/members/${ann.id}`);
  expect(left.practitionerIds).toEqual([]);

  const disabled = await server.admin<Json>('POST', `/admin/practitioners/${ann.id}/disable`);
  expect(Date.parse(disabled.disabledAt)).not.toBeNaN();
  const closed = await server.admin<Json>('POST', `/admin/organizations/${ward.id}/disable`);
  expect(closed.disabledAt).toEqual(expect.any(String));
  // Nothing new inside a disabled organisation.
  const refused = await call('POST', '/admin/teams', { organizationId: ward.id, name: 'Late' });
  expect(refused.status).toBe(409);
  expect(refused.body.issue[0].diagnostics).toBe(`Organization '${ward.id}' is disabled`);
  expect((await call('GET', '/admin/organizations/org-nosuchthing')).status).toBe(404);
});

test('a client bound to a team or a practitioner carries it in its token', async () => {
  const customer = await server.admin<Json>('POST', '/admin/customers', { name: 'Bound' });
  const organizationId = customer.defaultOrganizationId;
  const team = await server.admin<Json>('POST', '/admin/teams', { organizationId, name: 'Web UI team' });
  const practitioner = await server.admin<Json>('POST', '/admin/practitioners', { organizationId, name: 'Dr B' });

  // The organisation alone names the customer.
  const teamClient = await server.admin<Json>('POST', '/admin/clients', { organizationId, teamId: team.id, family: 'fhir' });
  expect(teamClient).toMatchObject({ customerId: customer.id, organizationId, teamId: team.id, practitionerId: null });
  const teamToken = await server.token(teamClient.client_id, teamClient.client_secret);
  expect(claims(teamToken)).toMatchObject({ org: organizationId, team: team.id });
  expect(server.tokens.verify('fhir', teamToken)).toMatchObject({ organizationId, teamId: team.id });

  const appClient = await server.admin<Json>('POST', '/admin/clients', { customerId: customer.id, practitionerId: practitioner.id, family: 'fhir' });
  const appToken = await server.token(appClient.client_id, appClient.client_secret);
  expect(claims(appToken)).toMatchObject({ org: organizationId, practitioner: practitioner.id });
  expect(claims(appToken)).not.toHaveProperty('team');
  expect(server.tokens.verify('fhir', appToken)).toMatchObject({ organizationId, practitionerId: practitioner.id });

  const { clients } = await server.admin<Json>('GET', `/admin/clients?customerId=${customer.id}`);
  expect(clients.map((c: Json) => [c.teamId, c.practitionerId])).toEqual([
    [team.id, null],
    [null, practitioner.id],
  ]);
});

test('a client may not act for what is not its organisation’s, nor be bound to both a team and a practitioner', async () => {
  const a = await server.admin<Json>('POST', '/admin/customers', { name: 'A' });
  const b = await server.admin<Json>('POST', '/admin/customers', { name: 'B' });
  const otherOrg = await server.admin<Json>('POST', '/admin/organizations', { customerId: a.id, name: 'A second org' });
  const foreignTeam = await server.admin<Json>('POST', '/admin/teams', { organizationId: otherOrg.id, name: 'T' });
  const practitioner = await server.admin<Json>('POST', '/admin/practitioners', { organizationId: a.defaultOrganizationId, name: 'P' });

  const wrongTeam = await call('POST', '/admin/clients', { customerId: a.id, teamId: foreignTeam.id, family: 'fhir' });
  expect(wrongTeam.status).toBe(400);
  expect(wrongTeam.body.issue[0]).toMatchObject({
    diagnostics: `Team '${foreignTeam.id}' is not a team of the client's organization '${a.defaultOrganizationId}'`,
    expression: ['teamId'],
  });
  const wrongCustomer = await call('POST', '/admin/clients', { customerId: b.id, organizationId: otherOrg.id, family: 'fhir' });
  expect(wrongCustomer.status).toBe(400);
  expect(wrongCustomer.body.issue[0].expression).toEqual(['organizationId']);
  const { defaultTeamId } = await server.admin<Json>('GET', `/admin/organizations/${a.defaultOrganizationId}`);
  const both = await call('POST', '/admin/clients', { customerId: a.id, teamId: defaultTeamId, practitionerId: practitioner.id, family: 'fhir' });
  expect(both.status).toBe(400);
  expect(both.body.issue[0].expression).toEqual(['teamId', 'practitionerId']);
  const neither = await call('POST', '/admin/clients', { family: 'fhir' });
  expect(neither.body.issue[0].diagnostics).toBe(`'customerId' or 'organizationId' is required`);

  const foreignMember = await call('POST', `/admin/teams/${foreignTeam.id}/members`, { practitionerId: practitioner.id });
  expect(foreignMember.status).toBe(400);
  expect(foreignMember.body.issue[0].expression).toEqual(['practitionerId']);
});

test("a tenant's token cannot read or change organisations, teams or practitioners", async () => {
  const tenant = await server.provision();
  for (const [method, path] of [
    ['GET', '/admin/organizations'],
    ['GET', '/admin/teams'],
    ['GET', '/admin/practitioners'],
    ['POST', '/admin/organizations'],
  ]) {
    const res = await fetch(`${server.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${tenant.token}`, 'content-type': 'application/json' },
      body: method === 'POST' ? JSON.stringify({ customerId: tenant.customerId, name: 'Mine' }) : undefined,
    });
    expect({ path, status: res.status }).toEqual({ path, status: 401 });
  }
});

describe('disabling refuses new tokens and the tokens already issued, from the next request on', () => {
  const cases: [string, (ids: Json) => string][] = [
    ['organisation', (ids) => `/admin/organizations/${ids.organizationId}/disable`],
    ['team', (ids) => `/admin/teams/${ids.teamId}/disable`],
    ['practitioner', (ids) => `/admin/practitioners/${ids.practitionerId}/disable`],
  ];
  test.each(cases)('a disabled %s', async (what, disablePath) => {
    const tenant = await server.provision();
    const customer = (await server.admin<Json>('GET', '/admin/customers')).customers.find((c: Json) => c.id === tenant.customerId);
    const organizationId = customer.defaultOrganizationId;
    const binding =
      what === 'team'
        ? { teamId: (await server.admin<Json>('POST', '/admin/teams', { organizationId, name: 'Doomed team' })).id }
        : what === 'practitioner'
          ? { practitionerId: (await server.admin<Json>('POST', '/admin/practitioners', { organizationId, name: 'Doomed' })).id }
          : {};
    const client = await server.admin<Json>('POST', '/admin/clients', { customerId: tenant.customerId, family: 'fhir', ...binding });
    const token = await server.token(client.client_id, client.client_secret);
    const read = () => fetch(`${tenant.baseUrl}/Patient`, { headers: { authorization: `Bearer ${token}` } });
    expect((await read()).status).toBe(200);

    await server.admin('POST', disablePath({ organizationId, ...binding }));

    const refused = await read();
    expect(refused.status).toBe(401);
    expect(refused.headers.get('www-authenticate')).toContain(`The ${what} this access token acts for is disabled`);
    await expect(server.token(client.client_id, client.client_secret)).rejects.toThrow(new RegExp(`The ${what} this client acts for is disabled`));
  });
});
