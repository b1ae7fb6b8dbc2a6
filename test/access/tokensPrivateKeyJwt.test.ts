import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { exportJWK, generateKeyPair, SignJWT, type JWK, type KeyLike } from 'jose';
import { runAdminCli } from '../support/runCli';
import { startTestServer, type Tenant, type TestServer } from '../support/testServer';

/**
 * private_key_jwt client authentication per SMART Backend Services, through the real token endpoint: a client
 * registered with public RS384/ES384 keys gets a token with a signed assertion; a replayed jti, an exp too far
 * ahead, another audience, an unregistered key or another algorithm are refused with invalid_client and no
 * token. Registration refuses private keys and keys that cannot verify RS384/ES384.
 */
type Json = Record<string, any>;
const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

let server: TestServer;
let t: Tenant;
let clientId: string;
let rsa: { privateKey: KeyLike; publicJwk: JWK };
let ec: { privateKey: KeyLike; publicJwk: JWK };

async function keyPair(alg: 'RS384' | 'ES384', kid: string) {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return { privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
}

beforeAll(async () => {
  server = await startTestServer();
  t = await server.provision();
  [rsa, ec] = await Promise.all([keyPair('RS384', 'rsa-1'), keyPair('ES384', 'ec-1')]);
  const client = await server.admin<{ client_id: string; jwks: Json }>('POST', '/admin/clients', {
    customerId: t.customerId,
    family: 'fhir',
    scopes: 'system/*.rs',
    jwks: { keys: [rsa.publicJwk, ec.publicJwk] },
  });
  clientId = client.client_id;
  expect(client.jwks.keys.map((k: JWK) => k.kid)).toEqual(['rsa-1', 'ec-1']);
});
afterAll(() => server.close());

const tokenUrl = () => `${server.url}/oauth2/token`;
const now = () => Math.floor(Date.now() / 1000);

interface AssertionOptions {
  alg?: string;
  kid?: string;
  key?: KeyLike;
  iss?: string;
  sub?: string;
  aud?: string;
  exp?: number;
  jti?: string;
}

function assertion(options: AssertionOptions = {}): Promise<string> {
  const alg = options.alg ?? 'RS384';
  const key = options.key ?? (alg.startsWith('ES') ? ec.privateKey : rsa.privateKey);
  return new SignJWT({ jti: options.jti ?? randomUUID() })
    .setProtectedHeader({ alg, kid: options.kid ?? (alg.startsWith('ES') ? 'ec-1' : 'rsa-1'), typ: 'JWT' })
    .setIssuer(options.iss ?? clientId)
    .setSubject(options.sub ?? clientId)
    .setAudience(options.aud ?? tokenUrl())
    .setExpirationTime(options.exp ?? now() + 240)
    .setIssuedAt()
    .sign(key);
}

async function requestToken(clientAssertion: string, url = tokenUrl()): Promise<{ status: number; body: Json }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'system/*.rs', client_assertion_type: ASSERTION_TYPE, client_assertion: clientAssertion }).toString(),
  });
  return { status: res.status, body: (await res.json()) as Json };
}

async function refused(clientAssertion: string, reason: RegExp, url?: string): Promise<void> {
  const { status, body } = await requestToken(clientAssertion, url);
  expect([400, 401]).toContain(status);
  expect(body.error).toBe('invalid_client');
  expect(body.error_description).toMatch(reason);
  expect(body.access_token).toBeUndefined();
}

test('an RS384 assertion gets a token that reads the customer’s data; so does an ES384 one', async () => {
  for (const alg of ['RS384', 'ES384']) {
    const { status, body } = await requestToken(await assertion({ alg }));
    expect({ alg, status }).toEqual({ alg, status: 200 });
    expect(body).toMatchObject({ token_type: 'Bearer', scope: 'system/*.rs' });
    const res = await fetch(`${t.baseUrl}/Patient`, { headers: { authorization: `Bearer ${body.access_token}` } });
    expect(res.status).toBe(200);
  }
});

test('a replayed assertion (same jti) is refused, though everything else about it is right', async () => {
  const once = await assertion();
  expect((await requestToken(once)).status).toBe(200);
  await refused(once, /jti was used before/);
  // A new assertion with the same jti is a replay too.
  const jti = randomUUID();
  expect((await requestToken(await assertion({ jti }))).status).toBe(200);
  await refused(await assertion({ jti, alg: 'ES384' }), /jti was used before/);
});

test('exp more than five minutes ahead, or past, is refused', async () => {
  const jti = randomUUID();
  await refused(await assertion({ exp: now() + 600, jti }), /at most 5 minutes ahead/);
  await refused(await assertion({ exp: now() - 120, jti }), /expired/);
  // Refusals record nothing: the jti is still unused.
  expect((await requestToken(await assertion({ jti }))).status).toBe(200);
});

test('an audience other than this token endpoint is refused, the other family’s token endpoint included', async () => {
  await refused(await assertion({ aud: 'https://elsewhere.example/oauth2/token' }), /aud must be this token endpoint/);
  await refused(await assertion({ aud: `${server.url}/legacy/oauth2/token` }), /aud must be this token endpoint/);
});

test('a key that was not registered, another algorithm, or iss ≠ sub is refused', async () => {
  const stranger = await keyPair('RS384', 'rsa-1');
  await refused(await assertion({ key: stranger.privateKey }), /signature does not verify/);
  await refused(await assertion({ key: stranger.privateKey, kid: 'rsa-9' }), /not signed by a key registered/);
  await refused(await assertion({ alg: 'RS256' }), /RS384 or ES384/);
  await refused(await assertion({ sub: t.clientId }), /iss and sub/);
  // A client without registered keys (the tenant's, secret-based) cannot use an assertion.
  await refused(await assertion({ iss: t.clientId, sub: t.clientId }), /no public keys registered/);
});

test('a revoked client’s assertion is refused', async () => {
  const other = await server.admin<{ client_id: string }>('POST', '/admin/clients', { customerId: t.customerId, family: 'fhir', jwks: { keys: [rsa.publicJwk] } });
  expect((await requestToken(await assertion({ iss: other.client_id, sub: other.client_id }))).status).toBe(200);
  await server.admin('POST', `/admin/clients/${other.client_id}/revoke`);
  await refused(await assertion({ iss: other.client_id, sub: other.client_id }), /revoked/);
});

test('registration refuses a private key, a key unable to verify RS384/ES384, and a malformed set; nothing is created', async () => {
  const before = (await server.admin<{ clients: Json[] }>('GET', `/admin/clients?customerId=${t.customerId}`)).clients.length;
  const { privateKey } = await generateKeyPair('ES384', { extractable: true });
  const p256 = (await generateKeyPair('ES256', { extractable: true })).publicKey;
  const cases: [unknown, RegExp][] = [
    [{ keys: [{ ...(await exportJWK(privateKey)), kid: 'x' }] }, /private member 'd'/],
    [{ keys: [await exportJWK(p256)] }, /P-384/],
    [{ keys: [{ ...rsa.publicJwk, alg: 'RS256' }] }, /alg must be RS384/],
    [{ keys: [{ kty: 'oct', k: 'c2VjcmV0' }] }, /private member 'k'/],
    [[rsa.publicJwk], /JSON Web Key Set/],
  ];
  for (const [jwks, message] of cases) {
    const res = await fetch(`${server.url}/admin/clients`, {
      method: 'POST',
      headers: { authorization: `Bearer ${server.adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ customerId: t.customerId, family: 'fhir', jwks }),
    });
    expect(res.status).toBe(400);
    const outcome = (await res.json()) as Json;
    expect(outcome.issue[0].diagnostics).toMatch(message);
    expect(outcome.issue[0].expression).toEqual(['jwks']);
  }
  expect((await server.admin<{ clients: Json[] }>('GET', `/admin/clients?customerId=${t.customerId}`)).clients.length).toBe(before);
});

test('`npm run admin -- client create --jwks FILE` registers the keys', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'trib-jwks-'));
  try {
    const file = path.join(dir, 'jwks.json');
    const key = await keyPair('ES384', 'cli-key');
    await writeFile(file, JSON.stringify({ keys: [key.publicJwk] }));
    const cli = await runAdminCli(server, 'client', 'create', '--customer', t.customerId, '--family', 'fhir', '--jwks', file);
    expect(cli.code).toBe(0);
    const created = JSON.parse(cli.stdout) as Json;
    const signed = await new SignJWT({ jti: randomUUID() })
      .setProtectedHeader({ alg: 'ES384', kid: 'cli-key' })
      .setIssuer(created.client_id)
      .setSubject(created.client_id)
      .setAudience(tokenUrl())
      .setExpirationTime(now() + 60)
      .sign(key.privateKey);
    expect((await requestToken(signed)).status).toBe(200);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
