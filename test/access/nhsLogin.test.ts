import type { AssertionJtis } from '../../src/access/assertionJtis';
import { createServer, type Server } from 'node:http';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createHmac } from 'node:crypto';
import { exportJWK, exportSPKI, generateKeyPair, type KeyLike, SignJWT } from 'jose';
import { NhsLoginIdTokens } from '../../src/access/nhsLoginIdTokens';
import { OAuthError } from '../../src/access/oauthError';
import { tokenExchange } from '../../src/access/tokenExchange';
import type { TokenService } from '../../src/access/tokens';
import { loadConfig } from '../../src/config';
import type { TenancyRepository } from '../../src/store/tenancyRepository';
import { startTestServer, type Tenant, type TestServer } from '../support/testServer';

/**
 * Issue 13 item 7: a patient app exchanges an NHS Login ID token (RFC 8693) for a patient-scoped access token.
 * A local issuer with its own keys stands in for NHS Login: its JWKS is a file for the server, and served over
 * HTTP on 127.0.0.1 for the JWKS URL case.
 */
const NHS = 'https://fhir.nhs.uk/Id/nhs-number';
const ISSUER = 'https://auth.sandpit.signin.nhs.uk';
const EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ID_TOKEN = 'urn:ietf:params:oauth:token-type:id_token';
const ACCESS_TOKEN = 'urn:ietf:params:oauth:token-type:access_token';
const ANN = '9449305552';
const BOB = '9449306060';

type Json = Record<string, any>;
let server: TestServer;
let supplier: Tenant;
let app: { client_id: string; client_secret: string };
let dir: string;
let issuerKey: KeyLike;
let issuerPublicPem: string;
let otherKey: KeyLike;
let jwks: Json;
let annId: string;
let bobId: string;

/** An ID token as NHS Login would issue it for the patient app, with `claims` overriding the defaults. */
async function idToken(claims: Json = {}, options: { key?: KeyLike; alg?: string; kid?: string } = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const payload: Json = {
    iss: ISSUER,
    aud: app.client_id,
    sub: 'nhs-login-subject-1',
    iat: now,
    exp: now + 300,
    nhs_number: ANN,
    identity_proofing_level: 'P9',
    vot: 'P9.Cp.Cd',
    ...claims,
  };
  for (const k of Object.keys(payload)) if (payload[k] === undefined) delete payload[k];
  return new SignJWT(payload).setProtectedHeader({ alg: options.alg ?? 'RS512', kid: options.kid ?? 'k1' }).sign(options.key ?? issuerKey);
}

function b64url(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

async function exchange(form: Record<string, string>, family = ''): Promise<{ status: number; body: Json }> {
  const res = await fetch(`${server.url}${family}/oauth2/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: EXCHANGE,
      client_id: app.client_id,
      client_secret: app.client_secret,
      subject_token_type: ID_TOKEN,
      ...form,
    }).toString(),
  });
  return { status: res.status, body: (await res.json()) as Json };
}

const claimsOf = (token: string): Json => JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8'));

async function put(resource: Json): Promise<void> {
  const res = await supplier.fetch(`${resource.resourceType}/${resource.id}`, { method: 'PUT', body: JSON.stringify(resource) });
  if (res.status >= 300) throw new Error(`${resource.resourceType}/${resource.id}: ${res.status} ${await res.text()}`);
}

async function aggregatedId(nhsNumber: string): Promise<string> {
  const bundle = (await (await server.aggregated(supplier, `Patient?identifier=${NHS}|${nhsNumber}`)).json()) as Json;
  const ids = (bundle.entry ?? []).map((e: Json) => e.resource.id);
  if (ids.length !== 1) throw new Error(`expected one aggregated Patient for ${nhsNumber}, got ${JSON.stringify(bundle)}`);
  return ids[0];
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'nhs-login-'));
  const pair = await generateKeyPair('RS512');
  issuerKey = pair.privateKey;
  issuerPublicPem = await exportSPKI(pair.publicKey);
  otherKey = (await generateKeyPair('RS512')).privateKey;
  jwks = { keys: [{ ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'RS512', use: 'sig' }] };
  await writeFile(path.join(dir, 'jwks.json'), JSON.stringify(jwks));

  server = await startTestServer({ NHS_LOGIN_ISSUER: ISSUER, NHS_LOGIN_JWKS_FILE: path.join(dir, 'jwks.json') });
  supplier = await server.provision({ name: 'Trust A' });
  await put({ resourceType: 'Patient', id: 'ann', identifier: [{ system: NHS, value: ANN }], name: [{ family: 'Smith', given: ['Ann'] }] });
  await put({ resourceType: 'Patient', id: 'bob', identifier: [{ system: NHS, value: BOB }], name: [{ family: 'Jones', given: ['Bob'] }] });
  await put({ resourceType: 'Observation', id: 'o1', status: 'final', code: { text: 'pulse' }, subject: { reference: 'Patient/bob' } });
  const customer = await server.admin<{ id: string }>('POST', '/admin/customers', { name: 'Patient app vendor' });
  app = await server.admin('POST', '/admin/clients', { customerId: customer.id, family: 'fhir', scopes: 'patient/*.rs' });
  await server.waitForAggregation();
  annId = await aggregatedId(ANN);
  bobId = await aggregatedId(BOB);
}, 120_000);
afterAll(async () => {
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

describe('the exchange', () => {
  test('a P9 ID token becomes a patient-scoped access token for the aggregated Patient with its NHS number', async () => {
    const { status, body } = await exchange({ subject_token: await idToken(), requested_token_type: ACCESS_TOKEN });
    expect(status).toBe(200);
    expect(body).toMatchObject({ token_type: 'Bearer', issued_token_type: ACCESS_TOKEN, scope: 'patient/*.rs' });
    expect(claimsOf(body.access_token)).toMatchObject({ patient: annId, client_id: app.client_id, scope: 'patient/*.rs' });
  });

  test('the patient app reads its patient and nothing of anyone else, and writes nothing', async () => {
    const { body } = await exchange({ subject_token: await idToken() });
    const as = (p: string, init: RequestInit = {}) =>
      fetch(`${server.url}${p}`, { ...init, headers: { authorization: `Bearer ${body.access_token}`, 'content-type': 'application/fhir+json' } });

    // The patient-compartment predicate (src/aggregator/access.ts, self access): its own record, no one else's.
    const own = await as(`/fhir/aggregated/Patient/${annId}`);
    expect(own.status).toBe(200);
    expect(((await own.json()) as Json).identifier).toContainEqual({ system: NHS, value: ANN });

    expect((await as(`/fhir/aggregated/Patient/${bobId}`)).status).toBe(404);
    const search = (await (await as('/fhir/aggregated/Patient')).json()) as Json;
    expect(search.entry.map((e: Json) => e.resource.id)).toEqual([annId]);
    const observations = (await (await as(`/fhir/aggregated/Observation?subject=Patient/${bobId}`)).json()) as Json;
    expect(observations.entry ?? []).toEqual([]);

    // A customer endpoint holds every patient's data: closed to a patient's token, for reads and writes.
    expect((await as(`/fhir/customer/${supplier.endpointId}/Patient/ann`)).status).toBe(403);
    const write = await as(`/fhir/customer/${supplier.endpointId}/Patient/ann`, { method: 'PUT', body: JSON.stringify({ resourceType: 'Patient', id: 'ann' }) });
    expect(write.status).toBe(403);
  });

  test("over GraphQL too: its own Patient, no one else's, and no customer endpoint", async () => {
    const { body } = await exchange({ subject_token: await idToken() });
    const graphql = async (query: string): Promise<Json> => {
      const res = await fetch(`${server.url}/graphql`, {
        method: 'POST',
        headers: { authorization: `Bearer ${body.access_token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ query }),
      });
      return (await res.json()) as Json;
    };
    const list = await graphql('{ PatientList { id } }');
    expect(list.data.PatientList.map((p: Json) => p.id)).toEqual([annId]);
    const endpoint = await graphql(`{ PatientList(_endpoint: "${supplier.endpointId}") { id } }`);
    expect(endpoint.data?.PatientList ?? null).toBeNull();
    expect(endpoint.errors[0].extensions.code).toBe('FORBIDDEN');
  });

  test('a narrower patient/ scope may be asked for; system/ scopes or more than read and search may not', async () => {
    const narrow = await exchange({ subject_token: await idToken(), scope: 'patient/Patient.rs' });
    expect(narrow.status).toBe(200);
    expect(narrow.body.scope).toBe('patient/Patient.rs');
    for (const scope of ['system/*.rs', 'patient/*.cruds']) {
      const res = await exchange({ subject_token: await idToken(), scope });
      expect(res).toMatchObject({ status: 400, body: { error: 'invalid_scope' } });
    }
  });
});

describe('refusals', () => {
  test('identity proven to P5 only → 403: record access needs P9', async () => {
    const { status, body } = await exchange({ subject_token: await idToken({ identity_proofing_level: 'P5', vot: 'P5.Cp.Cd' }) });
    expect(status).toBe(403);
    expect(body.error).toBe('invalid_grant');
    expect(body.error_description).toMatch(/needs P9.*P5/);
  });

  test('an NHS number no aggregated Patient holds → 403 naming that no record matches', async () => {
    const { status, body } = await exchange({ subject_token: await idToken({ nhs_number: '9000000009' }) });
    expect(status).toBe(403);
    expect(body).toMatchObject({ error: 'invalid_grant', error_description: expect.stringMatching(/No record/) });
  });

  test('an ID token without an NHS number is refused', async () => {
    const { status, body } = await exchange({ subject_token: await idToken({ nhs_number: undefined }) });
    expect(status).toBe(400);
    expect(body).toMatchObject({ error: 'invalid_grant', error_description: expect.stringMatching(/NHS number/) });
  });

  test('an ID token from another issuer, even one signed with a key of ours, is refused', async () => {
    const other = await exchange({ subject_token: await idToken({ iss: 'https://evil.example' }, { key: otherKey }) });
    expect(other).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
    const ours = await exchange({ subject_token: await idToken({ iss: 'https://auth.login.nhs.uk.evil.example' }) });
    expect(ours).toMatchObject({ status: 400, body: { error: 'invalid_grant', error_description: expect.stringMatching(/issuer/) } });
  });

  test("a forged ID token (right issuer and kid, someone else's key) is refused", async () => {
    const { status, body } = await exchange({ subject_token: await idToken({}, { key: otherKey }) });
    expect(status).toBe(400);
    expect(body).toMatchObject({ error: 'invalid_grant', error_description: expect.stringMatching(/signature/) });
  });

  test('an expired ID token is refused', async () => {
    const past = Math.floor(Date.now() / 1000) - 3600;
    const { status, body } = await exchange({ subject_token: await idToken({ iat: past - 300, exp: past }) });
    expect(status).toBe(400);
    expect(body).toMatchObject({ error: 'invalid_grant', error_description: expect.stringMatching(/expired/) });
  });

  test('an ID token issued for another app (wrong aud) is refused', async () => {
    const { status, body } = await exchange({ subject_token: await idToken({ aud: 'some-other-app' }) });
    expect(status).toBe(400);
    expect(body).toMatchObject({ error: 'invalid_grant', error_description: expect.stringMatching(/aud/) });
  });

  test("alg none and HS256 keyed with the issuer's public key (algorithm confusion) are refused", async () => {
    const now = Math.floor(Date.now() / 1000);
    const claims = { iss: ISSUER, aud: app.client_id, sub: 's', iat: now, exp: now + 300, nhs_number: ANN, identity_proofing_level: 'P9' };
    const unsigned = `${b64url({ alg: 'none', kid: 'k1' })}.${b64url(claims)}.`;
    expect(await exchange({ subject_token: unsigned })).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });

    const input = `${b64url({ alg: 'HS256', kid: 'k1' })}.${b64url(claims)}`;
    const confused = `${input}.${createHmac('sha256', issuerPublicPem).update(input).digest('base64url')}`;
    const res = await exchange({ subject_token: confused });
    expect(res).toMatchObject({ status: 400, body: { error: 'invalid_grant', error_description: expect.stringMatching(/RS512/) } });
  });

  test('a missing or malformed subject_token or token type is invalid_request', async () => {
    const token = await idToken();
    expect(await exchange({ subject_token: token, subject_token_type: 'urn:ietf:params:oauth:token-type:jwt' })).toMatchObject({
      status: 400,
      body: { error: 'invalid_request', error_description: expect.stringMatching(/subject_token_type/) },
    });
    expect(await exchange({ subject_token: '' })).toMatchObject({ status: 400, body: { error: 'invalid_request' } });
    expect(await exchange({ subject_token: token, requested_token_type: 'urn:ietf:params:oauth:token-type:refresh_token' })).toMatchObject({
      status: 400,
      body: { error: 'invalid_request' },
    });
    expect(await exchange({ subject_token: 'not-a-jwt' })).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
  });

  test('only a registered patient app may exchange: a system client is unauthorized_client, a wrong secret invalid_client (400: no HTTP Basic was tried)', async () => {
    const res = await fetch(`${server.url}/oauth2/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: EXCHANGE,
        client_id: supplier.clientId,
        client_secret: supplier.clientSecret,
        subject_token_type: ID_TOKEN,
        subject_token: await idToken({ aud: supplier.clientId }),
      }).toString(),
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as Json).error).toBe('unauthorized_client');
    expect(await exchange({ subject_token: await idToken(), client_secret: 'wrong' })).toMatchObject({ status: 400, body: { error: 'invalid_client' } });
  });

  test('the legacy token endpoint offers no token exchange', async () => {
    expect(await exchange({ subject_token: await idToken() }, '/legacy')).toMatchObject({ status: 400, body: { error: 'unsupported_grant_type' } });
  });

  test('a token with system/ scopes and a patient claim gets nothing from its system/ scopes', async () => {
    const { access_token } = server.tokens.issue('fhir', { clientId: app.client_id, customerId: supplier.customerId, scopes: ['system/*.cruds'], patientId: annId });
    const res = await fetch(`${server.url}/fhir/aggregated/Patient/${annId}`, { headers: { authorization: `Bearer ${access_token}` } });
    expect(res.status).toBe(403);
  });
});

describe('the issuer keys at a JWKS URL', () => {
  let jwksServer: Server;
  let jwksUrl: string;
  beforeAll(async () => {
    jwksServer = createServer((req, res) => {
      if (req.url !== '/jwks.json') return void res.writeHead(404).end();
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(jwks));
    });
    await new Promise<void>((resolve) => jwksServer.listen(0, '127.0.0.1', resolve));
    const address = jwksServer.address();
    jwksUrl = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/jwks.json`;
  });
  afterAll(() => new Promise<void>((resolve) => jwksServer.close(() => resolve())));

  test('verify an ID token signed by the issuer, and refuse one signed by another key', async () => {
    const verifier = await NhsLoginIdTokens.create({ issuer: ISSUER, jwksUrl });
    await expect(verifier.verify(await idToken(), app.client_id)).resolves.toMatchObject({ nhsNumber: ANN, proofingLevel: 'P9', subject: 'nhs-login-subject-1' });
    await expect(verifier.verify(await idToken({}, { key: otherKey }), app.client_id)).rejects.toMatchObject({ error: 'invalid_grant' });
  });

  test('NHS_LOGIN_AUDIENCE replaces the client id as the audience', async () => {
    const verifier = await NhsLoginIdTokens.create({ issuer: ISSUER, jwksUrl, audience: 'nhs-login-client' });
    await expect(verifier.verify(await idToken({ aud: 'nhs-login-client' }), app.client_id)).resolves.toMatchObject({ nhsNumber: ANN });
    await expect(verifier.verify(await idToken(), app.client_id)).rejects.toMatchObject({ error: 'invalid_grant' });
  });

  test('unreachable keys are a retryable server error, not a refusal of the person', async () => {
    const verifier = await NhsLoginIdTokens.create({ issuer: ISSUER, jwksUrl: jwksUrl.replace('/jwks.json', '/missing') });
    const err = await verifier.verify(await idToken(), app.client_id).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OAuthError);
    expect(err).toMatchObject({ error: 'server_error', status: 503 });
  });
});

describe('configuration', () => {
  test('without NHS Login configured, token exchange is an unsupported grant', async () => {
    const client = { clientId: 'app', customerId: 'cus-1', family: 'fhir', name: null, scopes: ['patient/*.rs'], createdAt: new Date(), revokedAt: null };
    const tenancy = {
      authenticateClient: async (id: string, secret: string) => (id === 'app' && secret === 's' ? client : null),
      organizations: { disabledBinding: async () => null },
    } as unknown as TenancyRepository;
    const request = { form: { grant_type: EXCHANGE, client_id: 'app', client_secret: 's', subject_token_type: ID_TOKEN, subject_token: 'x' } };
    await expect(tokenExchange({ tenancy, tokens: {} as TokenService, jtis: {} as AssertionJtis, publicUrl: () => 'http://127.0.0.1' }, 'fhir', request)).rejects.toMatchObject({
      error: 'unsupported_grant_type',
      description: expect.stringMatching(/NHS_LOGIN_ISSUER/),
    });
  });

  test('NHS Login needs its issuer and exactly one key source, as https URLs (http on loopback only)', () => {
    expect(loadConfig({}).nhsLogin).toBeUndefined();
    expect(loadConfig({ NHS_LOGIN_ISSUER: ISSUER, NHS_LOGIN_JWKS_URL: `${ISSUER}/.well-known/jwks.json` }).nhsLogin).toEqual({
      issuer: ISSUER,
      jwksUrl: `${ISSUER}/.well-known/jwks.json`,
    });
    expect(() => loadConfig({ NHS_LOGIN_JWKS_FILE: '/tmp/jwks.json' })).toThrow(/NHS_LOGIN_ISSUER is required/);
    expect(() => loadConfig({ NHS_LOGIN_ISSUER: ISSUER })).toThrow(/exactly one/);
    expect(() => loadConfig({ NHS_LOGIN_ISSUER: ISSUER, NHS_LOGIN_JWKS_FILE: '/tmp/a', NHS_LOGIN_JWKS_URL: `${ISSUER}/jwks` })).toThrow(/exactly one/);
    expect(() => loadConfig({ NHS_LOGIN_ISSUER: 'auth.login.nhs.uk', NHS_LOGIN_JWKS_FILE: '/tmp/a' })).toThrow(/NHS_LOGIN_ISSUER must be an absolute URL/);
    expect(() => loadConfig({ NHS_LOGIN_ISSUER: ISSUER, NHS_LOGIN_JWKS_URL: 'http://keys.example/jwks' })).toThrow(/https/);
  });

  test('a JWKS file that is not a JWKS stops the start with a message naming it', async () => {
    const bad = path.join(dir, 'bad.json');
    await writeFile(bad, '{"not":"keys"}');
    await expect(NhsLoginIdTokens.create({ issuer: ISSUER, jwksFile: bad })).rejects.toThrow(/NHS_LOGIN_JWKS_FILE .*keys/);
  });
});
