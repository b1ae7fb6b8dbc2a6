import { startTestServer, type Tenant, type TestServer } from '../support/testServer';

/** The admin API's endpoint and client lifecycle: update, disable, re-sourcing, revoke, secret rotation. */
type Json = Record<string, any>;
const SRC_ORG = 'http://fhir.patientsknowbest.com/codesystem/source-organization';
const ODS = 'https://fhir.nhs.uk/Id/ods-organization-code';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
}, 120_000);
afterAll(() => server.close());

/** The admin API's raw answer (status and JSON), refusals included. */
async function adminCall(method: string, path: string, body?: unknown): Promise<{ status: number; body: Json }> {
  const res = await fetch(`${server.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${server.adminToken}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Json };
}

async function put(t: Tenant, resource: Json): Promise<void> {
  const res = await t.fetch(`${resource.resourceType}/${resource.id}`, { method: 'PUT', body: JSON.stringify(resource) });
  if (res.status >= 300) throw new Error(`${resource.resourceType}/${resource.id}: ${res.status} ${await res.text()}`);
}

/** The token endpoint's answer: 200, or its OAuth error code (RFC 6749 §5.2). */
async function tokenAnswer(clientId: string, clientSecret: string): Promise<number | string> {
  const res = await fetch(`${server.url}/oauth2/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', client_id: clientId, client_secret: clientSecret }).toString(),
  });
  return res.status === 200 ? 200 : ((await res.json()) as Json).error;
}

describe('endpoints', () => {
  test('update changes the name and the default source organisation and answers the endpoint', async () => {
    const t = await server.provision();
    const updated = await adminCall('PATCH', `/admin/endpoints/${t.endpointId}`, { name: 'Lab feed', defaultSourceOrg: 'Organization/lab' });
    expect(updated.status).toBe(200);
    expect(updated.body).toMatchObject({ id: t.endpointId, name: 'Lab feed', defaultSourceOrg: 'Organization/lab', enabled: true });
    const read = await adminCall('GET', `/admin/endpoints/${t.endpointId}`);
    expect(read.body).toMatchObject({ name: 'Lab feed', defaultSourceOrg: 'Organization/lab' });
    // null clears.
    const cleared = await adminCall('PATCH', `/admin/endpoints/${t.endpointId}`, { defaultSourceOrg: null });
    expect(cleared.body.defaultSourceOrg).toBeNull();
    expect(cleared.body.name).toBe('Lab feed');
  });

  test('a disabled endpoint refuses its owner with 403 from the next request on, others still get 404; enabling restores it', async () => {
    const t = await server.provision();
    const other = await server.provision();
    // A first request puts the endpoint in the server's cache.
    expect((await t.fetch('Patient')).status).toBe(200);

    const disabled = await adminCall('POST', `/admin/endpoints/${t.endpointId}/disable`);
    expect(disabled.status).toBe(200);
    expect(disabled.body.enabled).toBe(false);

    const refused = await t.fetch('Patient', { method: 'POST', body: JSON.stringify({ resourceType: 'Patient' }) });
    expect(refused.status).toBe(403);
    const outcome = (await refused.json()) as Json;
    expect(outcome.resourceType).toBe('OperationOutcome');
    expect(outcome.issue[0].diagnostics).toMatch(/disabled/);
    expect((await other.fetch(`${t.baseUrl}/Patient`)).status).toBe(404);
    // The import tool's token is refused too, with the way out.
    const token = await adminCall('POST', `/admin/endpoints/${t.endpointId}/token`);
    expect(token.status).toBe(409);

    const enabled = await adminCall('PATCH', `/admin/endpoints/${t.endpointId}`, { enabled: true });
    expect(enabled.body.enabled).toBe(true);
    expect((await t.fetch('Patient')).status).toBe(200);
  });

  test('changing the default source organisation re-sources the endpoint’s copies in the aggregated record', async () => {
    const t = await server.provision();
    await put(t, { resourceType: 'Organization', id: 'first', identifier: [{ system: ODS, value: 'FIRST1' }], name: 'First' });
    await put(t, { resourceType: 'Organization', id: 'second', identifier: [{ system: ODS, value: 'SECOND2' }], name: 'Second' });
    await put(t, { resourceType: 'Patient', id: 'p', identifier: [{ system: 'https://fhir.nhs.uk/Id/nhs-number', value: '9990001112' }] });
    await put(t, { resourceType: 'Observation', id: 'o', status: 'final', code: { text: 're-sourced' }, subject: { reference: 'Patient/p' } });
    await server.waitForAggregation();
    // No patient organisation and no default: the copy is excluded, saying so.
    const before = (await (await t.fetch('Observation/o/$aggregation-status')).json()) as Json;
    expect(before.issue[0].diagnostics).toMatch(/no source organisation/);

    const aggregatedOrg = async (ods: string) => {
      const bundle = (await (await server.aggregated(t, `Organization?identifier=${ODS}|${ods}`)).json()) as Json;
      return bundle.entry[0].resource.id as string;
    };
    const sourceOf = async () => {
      const bundle = (await (await server.aggregated(t, 'Observation?code:text=re-sourced')).json()) as Json;
      const security = (bundle.entry ?? [])[0]?.resource.meta?.security ?? [];
      return security.filter((c: Json) => c.system === SRC_ORG).map((c: Json) => c.code);
    };

    const first = await adminCall('PATCH', `/admin/endpoints/${t.endpointId}`, { defaultSourceOrg: 'Organization/first' });
    expect(first.body.requeued).toBe(4);
    await server.waitForAggregation();
    expect(await sourceOf()).toEqual([await aggregatedOrg('FIRST1')]);

    await adminCall('PATCH', `/admin/endpoints/${t.endpointId}`, { defaultSourceOrg: 'Organization/second' });
    await server.waitForAggregation();
    expect(await sourceOf()).toEqual([await aggregatedOrg('SECOND2')]);
  }, 60_000);

  test('bad updates are 400 naming the field, unknown endpoints 404, and nothing changes', async () => {
    const t = await server.provision();
    const cases: [Json, string, RegExp][] = [
      [{ defaultSourceOrg: 'Patient/1' }, 'defaultSourceOrg', /Organization\/<id>/],
      [{ enabled: 'no' }, 'enabled', /true or false/],
      [{ name: '  ' }, 'name', /non-empty/],
      [{ defaultSourceOrganization: 'Organization/x' }, 'defaultSourceOrganization', /Unknown field/],
      [{}, 'name', /Nothing to change/],
    ];
    for (const [body, field, message] of cases) {
      const res = await adminCall('PATCH', `/admin/endpoints/${t.endpointId}`, body);
      expect(res.status).toBe(400);
      expect(res.body.issue[0].expression).toContain(field);
      expect(res.body.issue[0].diagnostics).toMatch(message);
    }
    expect((await adminCall('GET', `/admin/endpoints/${t.endpointId}`)).body).toMatchObject({ name: null, defaultSourceOrg: null, enabled: true });
    expect((await adminCall('PATCH', '/admin/endpoints/ep-nope', { enabled: false })).status).toBe(404);
    expect((await adminCall('POST', '/admin/endpoints/ep-nope/disable')).status).toBe(404);
  });
});

describe('clients', () => {
  test('rotating a secret invalidates the old one at once and prints the new one once', async () => {
    const t = await server.provision();
    const rotated = await adminCall('POST', `/admin/clients/${t.clientId}/secret`);
    expect(rotated.status).toBe(200);
    expect(rotated.body.client_id).toBe(t.clientId);
    expect(rotated.body.client_secret).toEqual(expect.any(String));
    expect(rotated.body.client_secret).not.toBe(t.clientSecret);
    expect(await tokenAnswer(t.clientId, t.clientSecret)).toBe('invalid_client');
    expect(await tokenAnswer(t.clientId, rotated.body.client_secret)).toBe(200);
    const listed = await adminCall('GET', `/admin/clients?customerId=${t.customerId}`);
    expect(JSON.stringify(listed.body)).not.toContain(rotated.body.client_secret);
  });

  test('a revoked client gets no token and its secret cannot be rotated back to life', async () => {
    const t = await server.provision();
    const revoked = await adminCall('POST', `/admin/clients/${t.clientId}/revoke`);
    expect(revoked.status).toBe(200);
    expect(revoked.body.revokedAt).toEqual(expect.any(String));
    expect(await tokenAnswer(t.clientId, t.clientSecret)).toBe('invalid_client');
    const rotate = await adminCall('POST', `/admin/clients/${t.clientId}/secret`);
    expect(rotate.status).toBe(409);
    expect((await adminCall('POST', '/admin/clients/cli-nope/secret')).status).toBe(404);
    expect((await adminCall('POST', '/admin/clients/cli-nope/revoke')).status).toBe(404);
  });

  test('clients are created with a name and SMART scopes; other scopes are 400', async () => {
    const t = await server.provision();
    const created = await adminCall('POST', '/admin/clients', { customerId: t.customerId, family: 'fhir', name: 'Reader', scopes: 'system/Patient.rs system/Observation.rs' });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ name: 'Reader', scopes: ['system/Patient.rs', 'system/Observation.rs'] });
    const bad = await adminCall('POST', '/admin/clients', { customerId: t.customerId, family: 'fhir', scopes: 'bad scope!' });
    expect(bad.status).toBe(400);
    expect(bad.body.issue[0]).toMatchObject({ expression: ['scopes'], diagnostics: expect.stringMatching(/"bad", "scope!" are not SMART scopes/) });
  });
});
