import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { exportJWK, generateKeyPair, type KeyLike, SignJWT } from 'jose';
import { startTestServer, type Tenant, type TestServer } from '../support/testServer';

/**
 * Issue 13 "Done when", end to end over REST and GraphQL on the real server, every caller through its real
 * door: client secrets at /oauth2/token for the customers' systems, a team's web UI and a clinician's app
 * (clients bound to a team / a practitioner through the admin API), and the NHS Login token exchange for the
 * patient's app. Trust A sends Ann's record (one Observation per label and one unlabelled) and Bob's.
 */
const NHS = 'https://fhir.nhs.uk/Id/nhs-number';
const LABEL = 'http://fhir.patientsknowbest.com/codesystem/privacy-label';
const ISSUER = 'https://auth.sandpit.signin.nhs.uk';
const ANN = '9449305552';
const BOB = '9449306060';
const ANN_OBSERVATIONS = ['ann-general', 'ann-mental', 'ann-sexual', 'ann-social', 'ann-unlabelled'];
type Json = Record<string, any>;

let server: TestServer;
let dir: string;
let issuerKey: KeyLike;
let trust: Tenant;
/** Bearer tokens of each caller, through its own door. */
const token: Record<'trust' | 'team' | 'clinician' | 'patient', string> = { trust: '', team: '', clinician: '', patient: '' };
let clinicianClient: { client_id: string; client_secret: string };
let teamId: string;
let annId: string;
let bobId: string;

async function put(resource: Json): Promise<void> {
  const res = await trust.fetch(`${resource.resourceType}/${resource.id}`, { method: 'PUT', body: JSON.stringify(resource) });
  if (res.status >= 300) throw new Error(`${resource.resourceType}/${resource.id}: ${res.status} ${await res.text()}`);
}

async function tokenRequest(form: Record<string, string>): Promise<{ status: number; body: Json }> {
  const res = await fetch(`${server.url}/oauth2/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(form).toString(),
  });
  return { status: res.status, body: (await res.json()) as Json };
}

async function rest(bearer: string, p: string): Promise<{ status: number; body: Json }> {
  const res = await fetch(`${server.url}/fhir/aggregated/${p}`, { headers: { authorization: `Bearer ${bearer}` } });
  return { status: res.status, body: (await res.json()) as Json };
}

async function graphql(bearer: string, query: string): Promise<Json> {
  const res = await fetch(`${server.url}/graphql`, {
    method: 'POST',
    headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json' },
    body: JSON.stringify({ query }),
  });
  return (await res.json()) as Json;
}

/** The upstream ids (code.text) of the Observations a caller finds, over REST and over GraphQL (must agree). */
async function observations(bearer: string): Promise<string[]> {
  const { status, body } = await rest(bearer, 'Observation?_count=100');
  expect(status).toBe(200);
  const viaRest = (body.entry ?? []).map((e: Json) => e.resource.code.text).sort();
  const viaGraphql = await graphql(bearer, '{ ObservationList(_count: 100) { code { text } } }');
  expect(viaGraphql.errors).toBeUndefined();
  expect(viaGraphql.data.ObservationList.map((o: Json) => o.code.text).sort()).toEqual(viaRest);
  return viaRest;
}

const claimsOf = (jwt: string): Json => JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString('utf8'));

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'access-e2e-'));
  const pair = await generateKeyPair('RS512');
  issuerKey = pair.privateKey;
  await writeFile(path.join(dir, 'jwks.json'), JSON.stringify({ keys: [{ ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'RS512', use: 'sig' }] }));
  server = await startTestServer({ NHS_LOGIN_ISSUER: ISSUER, NHS_LOGIN_JWKS_FILE: path.join(dir, 'jwks.json') });

  // Trust A: Ann's record and Bob's.
  trust = await server.provision({ name: 'Trust A', defaultSourceOrg: 'Organization/trust' });
  token.trust = trust.token;
  await put({ resourceType: 'Organization', id: 'trust', identifier: [{ system: 'https://fhir.nhs.uk/Id/ods-organization-code', value: 'TRUSTA' }] });
  await put({ resourceType: 'Patient', id: 'ann', identifier: [{ system: NHS, value: ANN }], name: [{ family: 'Smith', given: ['Ann'] }] });
  await put({ resourceType: 'Patient', id: 'bob', identifier: [{ system: NHS, value: BOB }], name: [{ family: 'Jones', given: ['Bob'] }] });
  for (const id of ANN_OBSERVATIONS) {
    const label = { 'ann-general': 'GENERAL_HEALTH', 'ann-mental': 'MENTAL_HEALTH', 'ann-sexual': 'SEXUAL_HEALTH', 'ann-social': 'SOCIAL_CARE' }[id];
    await put({
      resourceType: 'Observation',
      id,
      ...(label ? { meta: { security: [{ system: LABEL, code: label }] } } : {}),
      status: 'final',
      code: { text: id },
      subject: { reference: 'Patient/ann' },
    });
  }
  await put({
    resourceType: 'Observation',
    id: 'bob-mental',
    meta: { security: [{ system: LABEL, code: 'MENTAL_HEALTH' }] },
    status: 'final',
    code: { text: 'bob-mental' },
    subject: { reference: 'Patient/bob' },
  });

  // Clinic C: a mental health team's web UI and a clinician's app, each a client bound through the admin API.
  const clinic = await server.admin<{ id: string; defaultOrganizationId: string }>('POST', '/admin/customers', { name: 'Clinic C' });
  const team = await server.admin<{ id: string }>('POST', '/admin/teams', { organizationId: clinic.defaultOrganizationId, name: 'Mental health' });
  teamId = team.id;
  const clinician = await server.admin<{ id: string }>('POST', '/admin/practitioners', { organizationId: clinic.defaultOrganizationId, name: 'Dr Who' });
  const teamClient = await server.admin<{ client_id: string; client_secret: string }>('POST', '/admin/clients', {
    organizationId: clinic.defaultOrganizationId,
    teamId: team.id,
    family: 'fhir',
  });
  clinicianClient = await server.admin('POST', '/admin/clients', { organizationId: clinic.defaultOrganizationId, practitionerId: clinician.id, family: 'fhir' });
  token.team = await server.token(teamClient.client_id, teamClient.client_secret);
  token.clinician = await server.token(clinicianClient.client_id, clinicianClient.client_secret);

  // The patient app: NHS Login ID token exchanged for a patient-scoped token.
  const vendor = await server.admin<{ id: string }>('POST', '/admin/customers', { name: 'Patient app vendor' });
  const app = await server.admin<{ client_id: string; client_secret: string }>('POST', '/admin/clients', { customerId: vendor.id, family: 'fhir', scopes: 'patient/*.rs' });
  const now = Math.floor(Date.now() / 1000);
  const idToken = await new SignJWT({
    iss: ISSUER,
    aud: app.client_id,
    sub: 'nhs-login-ann',
    iat: now,
    exp: now + 300,
    nhs_number: ANN,
    identity_proofing_level: 'P9',
    vot: 'P9.Cp.Cd',
  })
    .setProtectedHeader({ alg: 'RS512', kid: 'k1' })
    .sign(issuerKey);

  await server.waitForAggregation();
  const exchanged = await tokenRequest({
    grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
    client_id: app.client_id,
    client_secret: app.client_secret,
    subject_token: idToken,
    subject_token_type: 'urn:ietf:params:oauth:token-type:id_token',
  });
  expect(exchanged.status).toBe(200);
  token.patient = exchanged.body.access_token;
  annId = claimsOf(token.patient).patient;
  const bob = await rest(token.trust, `Patient?identifier=${NHS}|${BOB}`);
  bobId = bob.body.entry[0].resource.id;
}, 120_000);
afterAll(async () => {
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

test('a customer system sees its own data', async () => {
  expect(await observations(token.trust)).toEqual([...ANN_OBSERVATIONS, 'bob-mental'].sort());
});

test('before any consent the team sees nothing of Ann', async () => {
  expect(await observations(token.team)).toEqual([]);
  expect((await rest(token.team, `Patient/${annId}`)).status).toBe(404);
});

test('Ann grants MENTAL_HEALTH to the team: it sees exactly that label of hers, over REST and GraphQL', async () => {
  const granted = await graphql(token.patient, `mutation { consentGrant(grantee: "CareTeam/${teamId}", label: "MENTAL_HEALTH") { id labels status } }`);
  expect(granted.errors).toBeUndefined();
  expect(granted.data.consentGrant).toMatchObject({ labels: ['MENTAL_HEALTH'], status: 'active' });

  expect(await observations(token.team)).toEqual(['ann-mental']);
  expect((await rest(token.team, `Patient/${annId}`)).status).toBe(200);
  expect((await rest(token.team, `Patient/${bobId}`)).status).toBe(404);
  // The team reads the Consent that lets it in, as a FHIR Consent resource.
  const consents = await rest(token.team, `Consent?patient=Patient/${annId}`);
  expect(consents.body.entry.map((e: Json) => e.resource.provision.provision[0].securityLabel[0].code)).toEqual(['MENTAL_HEALTH']);
});

test('a break-the-glass clinician sees all of Ann for the window, and nothing of Bob', async () => {
  expect(await observations(token.clinician)).toEqual([]);
  const refused = await tokenRequest({
    grant_type: 'client_credentials',
    client_id: clinicianClient.client_id,
    client_secret: clinicianClient.client_secret,
    break_glass: 'true',
    btg_patient: annId,
  });
  expect(refused).toMatchObject({ status: 400, body: { error: 'invalid_request', error_description: expect.stringMatching(/btg_reason/) } });

  const btg = await tokenRequest({
    grant_type: 'client_credentials',
    client_id: clinicianClient.client_id,
    client_secret: clinicianClient.client_secret,
    break_glass: 'true',
    btg_patient: annId,
    btg_reason: 'Unconscious in A&E',
  });
  expect(btg.status).toBe(200);
  // The default window: four hours, and the token lives exactly as long.
  expect(btg.body.expires_in).toBe(4 * 60 * 60);
  const claims = claimsOf(btg.body.access_token);
  expect(claims.btg).toEqual({ patient: annId, reason: 'Unconscious in A&E', until: claims.exp });

  expect(await observations(btg.body.access_token)).toEqual(ANN_OBSERVATIONS);
  expect((await rest(btg.body.access_token, `Patient/${bobId}`)).status).toBe(404);
  // Its ordinary token still sees nothing of Ann.
  expect(await observations(token.clinician)).toEqual([]);
});

test('Ann through NHS Login sees her whole record, and who accessed it and why', async () => {
  expect(await observations(token.patient)).toEqual(ANN_OBSERVATIONS);
  expect((await rest(token.patient, `Patient/${bobId}`)).status).toBe(404);

  const access = await graphql(
    token.patient,
    '{ myRecordAccess(count: 200) { subtype agent onBehalfOf what purpose } patientAccess { breakGlass { reason clientId practitionerId } } }',
  );
  expect(access.errors).toBeUndefined();
  const records: Json[] = access.data.myRecordAccess;
  const bySubtype = (s: string) => records.filter((r) => r.subtype === s);
  // The clinician's emergency: asserted with its reason, then every search it made under it.
  expect(bySubtype('break-the-glass')).toEqual([expect.objectContaining({ agent: clinicianClient.client_id, purpose: 'Unconscious in A&E', what: [`Patient/${annId}`] })]);
  expect(records.filter((r) => r.agent === clinicianClient.client_id && r.subtype === 'search-type' && r.purpose === 'Unconscious in A&E').length).toBeGreaterThan(0);
  // The team's reads of her data, on behalf of the team.
  expect(records.some((r) => r.subtype === 'search-type' && r.onBehalfOf.includes(teamId))).toBe(true);
  // Her consent change.
  expect(bySubtype('consent-grant')).toHaveLength(1);
  expect(access.data.patientAccess.breakGlass).toEqual([{ reason: 'Unconscious in A&E', clientId: clinicianClient.client_id, practitionerId: expect.stringMatching(/^prac-/) }]);
});

test('revoking the grant hides the data on the very next request', async () => {
  const revoked = await graphql(token.patient, `mutation { consentRevoke(grantee: "CareTeam/${teamId}", label: "MENTAL_HEALTH") }`);
  expect(revoked.data.consentRevoke).toBe(true);
  expect(await observations(token.team)).toEqual([]);
  expect((await rest(token.team, `Patient/${annId}`)).status).toBe(404);
  // The Consent stays, inactive, for Ann to read.
  const consents = await rest(token.patient, `Consent?patient=Patient/${annId}`);
  expect(consents.body.entry.map((e: Json) => e.resource.status)).toEqual(['inactive']);
});
