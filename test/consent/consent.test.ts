import { actingAs, addTeam } from '../support/accessModel';
import { aggregatedId, startTestServer, type Tenant, type TestServer } from '../support/testServer';

/**
 * Consent, patient self access and break-the-glass (issue 13 items 2-4), through the real server.
 * A supplies patient p's Observations, one per label plus an unlabelled one, and one of patient q.
 * C supplies nothing of p; its client acts as a team, a practitioner, its organisation, or nothing.
 * Organisation org-c has teams team-mh and team-gen; prac-1 belongs to team-gen; team-all is elsewhere.
 */
const NHS = 'https://fhir.nhs.uk/Id/nhs-number';
const ODS = 'https://fhir.nhs.uk/Id/ods-organization-code';
const LABEL = 'http://fhir.patientsknowbest.com/codesystem/privacy-label';
type Json = Record<string, any>;

const OBS: { key: string; patient: 'p' | 'q'; label?: string }[] = [
  { key: 'p-gen', patient: 'p', label: 'GENERAL_HEALTH' },
  { key: 'p-mental', patient: 'p', label: 'MENTAL_HEALTH' },
  { key: 'p-sex', patient: 'p', label: 'SEXUAL_HEALTH' },
  { key: 'p-social', patient: 'p', label: 'SOCIAL_CARE' },
  { key: 'p-none', patient: 'p' },
  { key: 'q-mental', patient: 'q', label: 'MENTAL_HEALTH' },
];

let server: TestServer;
let a: Tenant;
let c: Tenant;
let p: string;
let q: string;
const ids = new Map<string, string>();

/** The keys of the Observations the caller finds on the aggregated endpoint. */
async function seen(caller: Tenant): Promise<string[]> {
  const res = await server.aggregated(caller, 'Observation?_count=100');
  expect(res.status).toBe(200);
  const bundle = (await res.json()) as Json;
  const byId = new Map([...ids].map(([k, v]) => [v, k]));
  return (bundle.entry ?? []).map((e: Json) => byId.get(e.resource.id) ?? `other:${e.resource.code?.text}`).sort();
}

async function gql(caller: { token: string }, query: string, variables: Json = {}): Promise<Json> {
  const res = await fetch(`${server.url}/graphql`, {
    method: 'POST',
    headers: { authorization: `Bearer ${caller.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ query, variables }),
  });
  return (await res.json()) as Json;
}

const grant = (patientId: string, grantee: string, label: string) => server.admin('POST', '/admin/consents', { patientId, grantee, label });
const revoke = (patientId: string, grantee: string, label: string) => server.admin('DELETE', '/admin/consents', { patientId, grantee, label });

beforeAll(async () => {
  server = await startTestServer();
  a = await server.provision({ name: 'Trust A', defaultSourceOrg: 'Organization/org' });
  c = await server.provision({ name: 'Clinic C', defaultSourceOrg: 'Organization/org' });
  const resources: Json[] = [
    { resourceType: 'Organization', id: 'org', identifier: [{ system: ODS, value: 'AAA' }], name: 'Trust A' },
    { resourceType: 'Patient', id: 'p', identifier: [{ system: NHS, value: '9000000001' }], name: [{ family: 'Pea' }] },
    { resourceType: 'Patient', id: 'q', identifier: [{ system: NHS, value: '9000000002' }], name: [{ family: 'Queue' }] },
    ...OBS.map((o) => ({
      resourceType: 'Observation',
      id: o.key,
      ...(o.label ? { meta: { security: [{ system: LABEL, code: o.label }] } } : {}),
      status: 'final',
      code: { text: o.key },
      subject: { reference: `Patient/${o.patient}` },
    })),
  ];
  const bundle = { resourceType: 'Bundle', type: 'transaction', entry: resources.map((r) => ({ resource: r, request: { method: 'PUT', url: `${r.resourceType}/${r.id}` } })) };
  expect((await a.fetch(a.baseUrl, { method: 'POST', body: JSON.stringify(bundle) })).status).toBe(200);
  const own: Json[] = [
    { resourceType: 'Organization', id: 'org', identifier: [{ system: ODS, value: 'CCC' }], name: 'Clinic C' },
    { resourceType: 'Patient', id: 's', identifier: [{ system: NHS, value: '9000000003' }] },
    { resourceType: 'Observation', id: 'c-own', status: 'final', code: { text: 'c-own' }, subject: { reference: 'Patient/s' } },
  ];
  const ownBundle = { resourceType: 'Bundle', type: 'transaction', entry: own.map((r) => ({ resource: r, request: { method: 'PUT', url: `${r.resourceType}/${r.id}` } })) };
  expect((await c.fetch(c.baseUrl, { method: 'POST', body: JSON.stringify(ownBundle) })).status).toBe(200);
  await server.waitForAggregation();
  p = await aggregatedId(a, 'Patient', 'p');
  q = await aggregatedId(a, 'Patient', 'q');
  for (const o of OBS) ids.set(o.key, await aggregatedId(a, 'Observation', o.key));
  ids.set('c-own', await aggregatedId(c, 'Observation', 'c-own'));
  await addTeam(server, { id: 'team-mh', organizationId: 'org-c', customerId: c.customerId });
  await addTeam(server, { id: 'team-gen', organizationId: 'org-c', customerId: c.customerId, members: ['prac-1'] });
  await addTeam(server, { id: 'team-all', organizationId: 'org-other' });
}, 120_000);
afterAll(() => server?.close());

describe('consent to teams and practitioners', () => {
  beforeAll(async () => {
    await grant(p, 'CareTeam/team-mh', 'MENTAL_HEALTH');
    await grant(p, 'team-gen', 'GENERAL_HEALTH');
    await grant(p, 'Practitioner/prac-1', 'SEXUAL_HEALTH');
  });

  test('a team granted MENTAL_HEALTH sees exactly that label of that patient (and its own data)', async () => {
    const team = actingAs(server, c, { organizationId: 'org-c', teamId: 'team-mh' });
    expect(await seen(team)).toEqual(['c-own', 'p-mental']);
    expect((await server.aggregated(team, `Patient/${p}`)).status).toBe(200);
    expect((await server.aggregated(team, `Patient/${q}`)).status).toBe(404);
    expect((await server.aggregated(team, `Observation/${ids.get('q-mental')}`)).status).toBe(404);
  });

  test('a client of the organisation sees the union of its teams’ grants', async () => {
    expect(await seen(actingAs(server, c, { organizationId: 'org-c' }))).toEqual(['c-own', 'p-gen', 'p-mental']);
  });

  test('a disabled team’s grants no longer reach its organisation or its members', async () => {
    const sql = server.database.db.sql;
    await sql.execute(`UPDATE team SET disabled_at = now() WHERE id = 'team-gen'`);
    try {
      expect(await seen(actingAs(server, c, { organizationId: 'org-c' }))).toEqual(['c-own', 'p-mental']);
      expect(await seen(actingAs(server, c, { organizationId: 'org-c', practitionerId: 'prac-1' }))).toEqual(['c-own', 'p-sex']);
    } finally {
      await sql.execute(`UPDATE team SET disabled_at = NULL WHERE id = 'team-gen'`);
    }
  });

  test('a practitioner sees their own grants plus their teams’', async () => {
    expect(await seen(actingAs(server, c, { organizationId: 'org-c', practitionerId: 'prac-1' }))).toEqual(['c-own', 'p-gen', 'p-sex']);
  });

  test('a client acting as nobody sees only its customer’s own data', async () => {
    expect(await seen(c)).toEqual(['c-own']);
    expect((await server.aggregated(c, `Patient/${p}`)).status).toBe(404);
  });

  test('unlabelled data needs all four labels', async () => {
    const team = actingAs(server, c, { organizationId: 'org-other', teamId: 'team-all' });
    for (const label of ['GENERAL_HEALTH', 'MENTAL_HEALTH', 'SEXUAL_HEALTH']) await grant(p, 'team-all', label);
    expect(await seen(team)).toEqual(['c-own', 'p-gen', 'p-mental', 'p-sex']);
    await grant(p, 'team-all', 'SOCIAL_CARE');
    expect(await seen(team)).toEqual(['c-own', 'p-gen', 'p-mental', 'p-none', 'p-sex', 'p-social']);
  });

  test('revoking hides the data on the next request; the Consent turns inactive, never deleted', async () => {
    const team = actingAs(server, c, { teamId: 'team-mh' });
    expect(await seen(team)).toContain('p-mental');
    const revoked = (await revoke(p, 'team-mh', 'MENTAL_HEALTH')) as Json;
    expect(revoked).toMatchObject({ revoked: true, consent: { status: 'inactive', labels: [] } });
    expect(await seen(team)).toEqual(['c-own']);
    // The patient still reads the inactive Consent.
    const patient = actingAs(server, c, { patientId: p });
    const consent = (await (await server.aggregated(patient, `Consent/${revoked.consent.id}`)).json()) as Json;
    expect(consent).toMatchObject({ resourceType: 'Consent', status: 'inactive', patient: { reference: `Patient/${p}` } });
    expect((await revoke(p, 'team-mh', 'MENTAL_HEALTH')) as Json).toEqual({ revoked: false });
    await grant(p, 'team-mh', 'MENTAL_HEALTH');
    expect(await seen(team)).toEqual(['c-own', 'p-mental']);
  });

  test('Consent resources: R4 shape, visible to the patient and the grantee only', async () => {
    const team = actingAs(server, c, { teamId: 'team-gen' });
    const bundle = (await (await server.aggregated(team, `Consent?patient=${p}`)).json()) as Json;
    expect(bundle.entry).toHaveLength(1);
    const consent = bundle.entry[0].resource;
    expect(consent).toMatchObject({
      resourceType: 'Consent',
      status: 'active',
      scope: { coding: [{ code: 'patient-privacy' }] },
      patient: { reference: `Patient/${p}` },
      provision: {
        type: 'deny',
        actor: [{ reference: { reference: 'CareTeam/team-gen' } }],
        provision: [{ type: 'permit', securityLabel: [{ system: LABEL, code: 'GENERAL_HEALTH' }] }],
      },
    });
    expect(typeof consent.dateTime).toBe('string');
    const byActor = (await (await server.aggregated(team, 'Consent?actor=CareTeam/team-gen&status=active')).json()) as Json;
    expect(byActor.entry.map((e: Json) => e.resource.id)).toEqual([consent.id]);
    // Neither the supplier of the data nor an unrelated client nor another team sees it.
    expect((await server.aggregated(a, `Consent/${consent.id}`)).status).toBe(404);
    expect((await server.aggregated(c, `Consent/${consent.id}`)).status).toBe(404);
    expect((await server.aggregated(actingAs(server, c, { teamId: 'team-mh' }), `Consent/${consent.id}`)).status).toBe(404);
    // The patient sees every one of theirs, in REST and GraphQL.
    const patient = actingAs(server, c, { patientId: p });
    const all = (await (await server.aggregated(patient, `Consent?patient=${p}&_count=50`)).json()) as Json;
    expect(all.entry.map((e: Json) => e.resource.provision.actor[0].reference.reference).sort()).toEqual([
      'CareTeam/team-all',
      'CareTeam/team-gen',
      'CareTeam/team-mh',
      'Practitioner/prac-1',
    ]);
    const listed = await gql(patient, `{ ConsentList(patient: "${p}") { id status } }`);
    expect(listed.data.ConsentList).toHaveLength(4);
    expect((await gql(c, `{ ConsentList(patient: "${p}") { id } }`)).data.ConsentList).toEqual([]);
  });

  test('bad consent input is a clear 4xx through admin API, CLI shapes and GraphQL', async () => {
    const res = await fetch(`${server.url}/admin/consents`, {
      method: 'POST',
      headers: { authorization: `Bearer ${server.adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ patientId: p, grantee: 'cus-123', label: 'MENTAL_HEALTH' }),
    });
    expect(res.status).toBe(400);
    expect(JSON.stringify(await res.json())).toMatch(/grantee/);
    const unknown = await fetch(`${server.url}/admin/consents`, {
      method: 'POST',
      headers: { authorization: `Bearer ${server.adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ patientId: 'no-such-patient', grantee: 'team-mh', label: 'MENTAL_HEALTH' }),
    });
    expect(unknown.status).toBe(404);
    const badLabel = await gql({ token: server.adminToken }, `mutation { consentGrant(patient: "${p}", grantee: "team-mh", label: "ALL") { id } }`);
    expect(badLabel.errors?.[0].extensions).toMatchObject({ status: 400 });
    // A clinical client may not change a patient's consents.
    const notPatient = await gql(actingAs(server, c, { teamId: 'team-mh' }), `mutation { consentGrant(patient: "${p}", grantee: "team-mh", label: "SOCIAL_CARE") { id } }`);
    expect(notPatient.errors?.[0].extensions).toMatchObject({ status: 403 });
  });
});

describe('the patient', () => {
  test('self access: the whole compartment, every label and unlabelled, nothing of anyone else', async () => {
    const patient = actingAs(server, c, { patientId: p });
    expect(await seen(patient)).toEqual(['p-gen', 'p-mental', 'p-none', 'p-sex', 'p-social']);
    expect((await server.aggregated(patient, `Patient/${p}`)).status).toBe(200);
    expect((await server.aggregated(patient, `Patient/${q}`)).status).toBe(404);
    // Not through the customer endpoints of the token's customer either: those hold everyone's data.
    expect((await fetch(`${a.baseUrl}/Observation`, { headers: { authorization: `Bearer ${actingAs(server, a, { patientId: p }).token}` } })).status).toBe(403);
    const gqlSeen = await gql(patient, `{ ObservationList(_count: 50) { id } }`);
    expect(gqlSeen.data.ObservationList).toHaveLength(5);
  });

  test('a patient grants and revokes their own consents in GraphQL, and only their own', async () => {
    const patient = actingAs(server, c, { patientId: q });
    const team = actingAs(server, c, { teamId: 'team-mh' });
    expect(await seen(team)).not.toContain('q-mental');
    const granted = await gql(patient, `mutation { consentGrant(grantee: "team-mh", label: "MENTAL_HEALTH") { patientId grantee labels status } }`);
    expect(granted.data.consentGrant).toEqual({ patientId: q, grantee: 'CareTeam/team-mh', labels: ['MENTAL_HEALTH'], status: 'active' });
    expect(await seen(team)).toContain('q-mental');
    expect((await gql(patient, `mutation { consentRevoke(grantee: "team-mh", label: "MENTAL_HEALTH") }`)).data.consentRevoke).toBe(true);
    expect(await seen(team)).not.toContain('q-mental');
    const other = await gql(patient, `mutation { consentGrant(patient: "${p}", grantee: "team-mh", label: "SOCIAL_CARE") { id } }`);
    expect(other.errors?.[0].extensions).toMatchObject({ status: 403 });
  });

  test('a frozen patient sees nothing until they unfreeze', async () => {
    const patient = actingAs(server, c, { patientId: p });
    const frozen = await gql(patient, `mutation { patientAccessFreeze(frozen: true) { patientId frozen } }`);
    expect(frozen.data.patientAccessFreeze).toEqual({ patientId: p, frozen: true });
    expect(await seen(patient)).toEqual([]);
    expect((await server.aggregated(patient, `Patient/${p}`)).status).toBe(404);
    // Grantees are not affected by the patient's own freeze.
    expect(await seen(actingAs(server, c, { teamId: 'team-gen' }))).toContain('p-gen');
    await gql(patient, `mutation { patientAccessFreeze(frozen: false) { frozen } }`);
    expect(await seen(patient)).toHaveLength(5);
    // Both changes are audited, made by the patient themself.
    const audit = (await server.admin<Json>('GET', `/admin/AuditEvent?patient=${p}&_count=200`)).entry.map((e: Json) => e.resource);
    const freezes = audit.filter((e: Json) => e.subtype[0].code === 'access-freeze');
    expect(freezes.map((e: Json) => e.entity.find((x: Json) => x.detail)?.detail[0].valueString)).toEqual(['false', 'true']);
    expect(freezes.every((e: Json) => e.agent.some((a: Json) => a.who.reference === `Patient/${p}`))).toBe(true);
  });

  test('withdrawing all sharing at once hides everything from every grantee', async () => {
    const before = await seen(actingAs(server, c, { organizationId: 'org-c' }));
    expect(before).toContain('p-gen');
    const patient = actingAs(server, c, { patientId: p });
    const withdrawn = await gql(patient, `mutation { consentWithdrawAll { grantee status } }`);
    expect(withdrawn.data.consentWithdrawAll.length).toBeGreaterThan(0);
    expect(withdrawn.data.consentWithdrawAll.every((x: Json) => x.status === 'inactive')).toBe(true);
    for (const claims of [{ organizationId: 'org-c' }, { teamId: 'team-all' }, { practitionerId: 'prac-1' }]) {
      expect(await seen(actingAs(server, c, claims))).toEqual(['c-own']);
    }
    // The patient still sees their record.
    expect(await seen(patient)).toHaveLength(5);
    // One audited revoke naming every Consent it made inactive.
    const audit = (await server.admin<Json>('GET', `/admin/AuditEvent?patient=${p}&_count=200`)).entry
      .map((e: Json) => e.resource)
      .find((e: Json) => e.subtype[0].code === 'consent-revoke');
    expect(audit.entity.filter((x: Json) => x.what?.reference?.startsWith('Consent/'))).toHaveLength(withdrawn.data.consentWithdrawAll.length);
  });
});

describe('break-the-glass', () => {
  test('opens every label of that patient only, for the window, and the patient sees it afterwards', async () => {
    const clinician = actingAs(server, c, { organizationId: 'org-c', teamId: 'team-mh' });
    const missing = await gql(clinician, `mutation { breakTheGlass(patient: "${p}", reason: "  ") { access_token } }`);
    expect(missing.errors?.[0].extensions).toMatchObject({ status: 400 });
    const res = await gql(clinician, `mutation { breakTheGlass(patient: "${p}", reason: "Unconscious in A&E") { access_token expires_in breakGlass { id reason } } }`);
    const btg = res.data.breakTheGlass;
    expect(btg.expires_in).toBe(4 * 60 * 60);
    const glass = { ...c, token: btg.access_token };
    expect(await seen(glass)).toEqual(['c-own', 'p-gen', 'p-mental', 'p-none', 'p-sex', 'p-social']);
    expect((await server.aggregated(glass, `Observation/${ids.get('q-mental')}`)).status).toBe(404);
    // Past its window the claim opens nothing (even on a token still valid).
    const expired = actingAs(server, c, { teamId: 'team-mh', breakGlass: { patientId: p, reason: 'old', until: Math.floor(Date.now() / 1000) - 1 } });
    expect(await seen(expired)).toEqual(['c-own']);
    // The patient lists who broke the glass, and why.
    const patient = actingAs(server, c, { patientId: p });
    const access = await gql(patient, `{ patientAccess { breakGlass { id reason clientId teamId } } }`);
    expect(access.data.patientAccess.breakGlass).toEqual([{ id: btg.breakGlass.id, reason: 'Unconscious in A&E', clientId: c.clientId, teamId: 'team-mh' }]);
    // A patient cannot break the glass; another patient's events are not theirs to list.
    expect((await gql(patient, `mutation { breakTheGlass(patient: "${q}", reason: "curious") { access_token } }`)).errors?.[0].extensions).toMatchObject({ status: 403 });
    expect((await gql(patient, `{ patientAccess(patient: "${q}") { frozen } }`)).errors?.[0].extensions).toMatchObject({ status: 403 });
  });

  test('at the token endpoint: bad break-the-glass parameters are an OAuth invalid_request, nothing recorded', async () => {
    const before = ((await gql({ token: server.adminToken }, `{ patientAccess(patient: "${p}") { breakGlass { id } } }`)) as Json).data.patientAccess.breakGlass.length;
    const ask = async (form: Record<string, string>, path = '/oauth2/token') => {
      const res = await fetch(`${server.url}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'client_credentials', client_id: c.clientId, client_secret: c.clientSecret, ...form }).toString(),
      });
      return { status: res.status, body: (await res.json()) as Json };
    };
    const cases: [Record<string, string>, RegExp][] = [
      [{ break_glass: 'yes', btg_patient: p, btg_reason: 'why' }, /break_glass must be 'true'/],
      [{ break_glass: 'true', btg_reason: 'why' }, /btg_patient is required/],
      [{ break_glass: 'true', btg_patient: p, btg_reason: '   ' }, /btg_reason is required/],
      [{ btg_patient: p, btg_reason: 'why' }, /break_glass must be 'true'/],
      [{ break_glass: 'true', btg_patient: 'no-such-patient', btg_reason: 'why' }, /not in the aggregated record/],
      [{ break_glass: 'true', btg_patient: 'Patient/../x', btg_reason: 'why' }, /not a FHIR id/],
    ];
    for (const [form, message] of cases) {
      const { status, body } = await ask(form);
      expect({ form, status, error: body.error }).toEqual({ form, status: 400, error: 'invalid_request' });
      expect(body.error_description).toMatch(message);
    }
    const after = ((await gql({ token: server.adminToken }, `{ patientAccess(patient: "${p}") { breakGlass { id } } }`)) as Json).data.patientAccess.breakGlass.length;
    expect(after).toBe(before);
    // A good request is recorded and opens the record (with the client's own scopes).
    const { status, body } = await ask({ break_glass: 'true', btg_patient: p, btg_reason: 'Collapsed at home', scope: 'system/Observation.rs' });
    expect(status).toBe(200);
    expect(body).toMatchObject({ token_type: 'Bearer', expires_in: 4 * 60 * 60, scope: 'system/Observation.rs', break_glass_until: expect.any(String) });
    expect(await seen({ ...c, token: body.access_token })).toEqual(['c-own', 'p-gen', 'p-mental', 'p-none', 'p-sex', 'p-social']);
  });
});
