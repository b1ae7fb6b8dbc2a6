import { createHmac, createPublicKey } from 'node:crypto';
import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, generateKeyPair, jwtVerify, SignJWT, UnsecuredJWT, type JSONWebKeySet, type JWTPayload } from 'jose';
import { forgeToken } from '../support/forgeToken';
import { runAdminCli } from '../support/runCli';
import { startTestServer, type Tenant, type TestServer } from '../support/testServer';

/**
 * Access tokens through the real server (issue 13 item 6): each family publishes its JWKS and a resource
 * server verifies our tokens with jose from it alone; keys rotate without refusing a token that was valid;
 * SMART configuration says where and how; and every token that is not exactly an ES256 token of this family,
 * from this issuer, for this audience, in its lifetime, is refused with 401 invalid_token — a write carried by
 * such a token writes nothing.
 */
type Json = Record<string, any>;

let server: TestServer;
let t: Tenant;
let legacyToken: string;
beforeAll(async () => {
  server = await startTestServer();
  t = await server.provision();
  const legacy = await server.admin<{ client_id: string; client_secret: string }>('POST', '/admin/clients', { customerId: t.customerId, family: 'legacy' });
  legacyToken = await server.token(legacy.client_id, legacy.client_secret, 'legacy');
});
afterAll(() => server.close());

const ISSUER = 'http://127.0.0.1/oauth2';
const AUDIENCE = 'http://127.0.0.1/fhir';
const jwksOf = async (path: string) => (await (await fetch(`${server.url}${path}`)).json()) as JSONWebKeySet;
const read = (token: string) => fetch(`${t.baseUrl}/Patient`, { headers: { authorization: `Bearer ${token}` } });

describe('JWKS', () => {
  test('each family publishes its public keys, cacheable, without a token; a fhir token verifies with jose from the fhir set only', async () => {
    const res = await fetch(`${server.url}/.well-known/jwks.json`);
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toMatch(/max-age=\d+/);
    const fhir = (await res.json()) as JSONWebKeySet;
    expect(fhir.keys).toEqual([expect.objectContaining({ kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig', kid: decodeProtectedHeader(t.token).kid })]);
    expect(fhir.keys[0]).not.toHaveProperty('d');
    const { payload, protectedHeader } = await jwtVerify(t.token, createLocalJWKSet(fhir), { issuer: ISSUER, audience: AUDIENCE, algorithms: ['ES256'], typ: 'at+jwt' });
    expect(protectedHeader.alg).toBe('ES256');
    expect(payload).toMatchObject({ sub: t.clientId, customer_id: t.customerId });

    const legacy = await jwksOf('/legacy/.well-known/jwks.json');
    expect(legacy.keys[0].kid).not.toBe(fhir.keys[0].kid);
    await expect(jwtVerify(legacyToken, createLocalJWKSet(fhir))).rejects.toThrow();
    await expect(jwtVerify(legacyToken, createLocalJWKSet(legacy), { issuer: 'http://127.0.0.1/legacy/oauth2', audience: 'http://127.0.0.1/legacy' })).resolves.toBeDefined();
  });

  test('SMART configuration lists the token endpoint, auth methods, signing algorithms, scopes and the JWKS, per family and under each FHIR base', async () => {
    const res = await fetch(`${server.url}/.well-known/smart-configuration`);
    expect(res.status).toBe(200);
    const config = (await res.json()) as Json;
    expect(config).toMatchObject({
      token_endpoint: `${server.url}/oauth2/token`,
      jwks_uri: `${server.url}/.well-known/jwks.json`,
      token_endpoint_auth_methods_supported: expect.arrayContaining(['private_key_jwt', 'client_secret_basic']),
      token_endpoint_auth_signing_alg_values_supported: ['RS384', 'ES384'],
      grant_types_supported: ['client_credentials'],
      scopes_supported: expect.arrayContaining(['system/*.cruds', 'system/*.rs']),
      capabilities: expect.arrayContaining(['client-confidential-asymmetric']),
    });
    const legacy = (await (await fetch(`${server.url}/legacy/.well-known/smart-configuration`)).json()) as Json;
    expect(legacy).toMatchObject({ token_endpoint: `${server.url}/legacy/oauth2/token`, jwks_uri: `${server.url}/legacy/.well-known/jwks.json` });
    for (const base of [`${server.url}/fhir/aggregated`, t.baseUrl]) {
      const atBase = await fetch(`${base}/.well-known/smart-configuration`);
      expect(atBase.status).toBe(200);
      expect(await atBase.json()).toEqual(config);
    }
  });
});

describe('rotation', () => {
  test('a new key signs new tokens; tokens of the old key keep working until they expire, and the JWKS lists both meanwhile', async () => {
    const before = await server.token(t.clientId, t.clientSecret);
    const oldKid = decodeProtectedHeader(before).kid;
    const legacyBefore = (await jwksOf('/legacy/.well-known/jwks.json')).keys.map((k) => k.kid);
    const rotated = await server.admin<{ rotated: Json[] }>('POST', '/admin/keys/rotate', { family: 'fhir' });
    expect(rotated.rotated).toEqual([expect.objectContaining({ family: 'fhir', previousKid: oldKid })]);
    const newKid = rotated.rotated[0].kid;
    // The old key verifies for the longest token life past the rotation — a break-the-glass token lives the
    // whole emergency window (BREAK_THE_GLASS_SECONDS, 4 hours by default) — and a little clock skew.
    const until = Date.parse(rotated.rotated[0].previousVerifiesUntil);
    expect(until).toBeGreaterThanOrEqual(Date.now() + 4 * 3600_000 - 1000);
    expect(until).toBeLessThanOrEqual(Date.now() + 4 * 3600_000 + 100_000);

    const after = await server.token(t.clientId, t.clientSecret);
    expect(decodeProtectedHeader(after).kid).toBe(newKid);
    expect((await read(before)).status).toBe(200);
    expect((await read(after)).status).toBe(200);
    expect((await jwksOf('/.well-known/jwks.json')).keys.map((k) => k.kid)).toEqual([newKid, oldKid]);
    // The other family was left alone.
    expect((await jwksOf('/legacy/.well-known/jwks.json')).keys.map((k) => k.kid)).toEqual(legacyBefore);
  });

  test('`npm run admin -- keys rotate` rotates both families; an unknown family is a 400 naming it', async () => {
    const before = (await jwksOf('/legacy/.well-known/jwks.json')).keys[0].kid;
    const cli = await runAdminCli(server, 'keys', 'rotate');
    expect(cli.code).toBe(0);
    expect(JSON.parse(cli.stdout).rotated.map((r: Json) => r.family)).toEqual(['fhir', 'legacy']);
    expect((await jwksOf('/legacy/.well-known/jwks.json')).keys.map((k) => k.kid)).toContain(before);
    expect((await read(t.token)).status).toBe(200);
    await expect(server.admin('POST', '/admin/keys/rotate', { family: 'smart' })).rejects.toThrow(/400.*family/);
  });
});

describe('refused tokens', () => {
  const now = () => Math.floor(Date.now() / 1000);
  const claims = (): JWTPayload => ({ ...decodeJwt(t.token), iat: now(), exp: now() + 120 });
  let n = 0;

  /** A PUT with the token: 401 invalid_token, and the resource it would have written does not exist. */
  async function refusedWrite(token: string, reason: RegExp): Promise<void> {
    const id = `forged-${++n}`;
    const res = await fetch(`${t.baseUrl}/Patient/${id}`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/fhir+json' },
      body: JSON.stringify({ resourceType: 'Patient', id }),
    });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toContain('error="invalid_token"');
    const outcome = (await res.json()) as Json;
    expect(outcome.resourceType).toBe('OperationOutcome');
    expect(outcome.issue[0].diagnostics).toMatch(reason);
    expect((await t.fetch(`Patient/${id}`)).status).toBe(404);
  }

  test('control: the same claims signed with the server’s key are accepted (each refusal below is for what it changes)', async () => {
    expect((await read(await forgeToken(server.dataDir, 'fhir', claims()))).status).toBe(200);
  });

  test('alg none', async () => {
    const unsecured = new UnsecuredJWT(claims()).encode();
    await refusedWrite(unsecured, /ES256, not 'none'/);
  });

  test('HS256 keyed with the public key (algorithm confusion)', async () => {
    const jwk = (await jwksOf('/.well-known/jwks.json')).keys[0];
    const pem = createPublicKey({ key: jwk as any, format: 'jwk' }).export({ type: 'spki', format: 'pem' });
    for (const secret of [pem, JSON.stringify(jwk)]) {
      const input = `${Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'at+jwt', kid: jwk.kid })).toString('base64url')}.${Buffer.from(JSON.stringify(claims())).toString('base64url')}`;
      const confused = `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
      await refusedWrite(confused, /ES256, not 'HS256'/);
    }
  });

  test('RS256 with a key of the attacker’s under the server’s kid', async () => {
    const { privateKey } = await generateKeyPair('RS256');
    const kid = decodeProtectedHeader(t.token).kid;
    const token = await new SignJWT(claims()).setProtectedHeader({ alg: 'RS256', typ: 'at+jwt', kid }).sign(privateKey);
    await refusedWrite(token, /ES256, not 'RS256'/);
  });

  test('ES256 by a key the server does not hold, or under an unknown kid', async () => {
    const { privateKey } = await generateKeyPair('ES256');
    const kid = decodeProtectedHeader(t.token).kid;
    await refusedWrite(await new SignJWT(claims()).setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid }).sign(privateKey), /signature is not valid/);
    await refusedWrite(await forgeToken(server.dataDir, 'fhir', claims(), { kid: 'unknown-kid' }), /key this server does not hold/);
  });

  test('wrong issuer, wrong audience', async () => {
    await refusedWrite(await forgeToken(server.dataDir, 'fhir', { ...claims(), iss: 'https://evil.example/oauth2' }), /not issued by/);
    await refusedWrite(await forgeToken(server.dataDir, 'fhir', { ...claims(), aud: 'http://127.0.0.1/legacy' }), /not meant for/);
  });

  test('expired, and not yet valid', async () => {
    await refusedWrite(await forgeToken(server.dataDir, 'fhir', { ...claims(), iat: now() - 600, exp: now() - 1 }), /expired/);
    await refusedWrite(await forgeToken(server.dataDir, 'fhir', { ...claims(), nbf: now() + 3600 }), /not valid yet/);
  });

  test('the other family’s token, as issued and re-signed with the legacy key for fhir claims', async () => {
    await refusedWrite(legacyToken, /key this server does not hold|not issued by/);
    await refusedWrite(await forgeToken(server.dataDir, 'legacy', claims()), /key this server does not hold/);
  });

  test('not typed at+jwt, or with a critical header the server does not understand', async () => {
    await refusedWrite(await forgeToken(server.dataDir, 'fhir', claims(), { typ: 'JWT' }), /at\+jwt/);
    await refusedWrite(await forgeToken(server.dataDir, 'fhir', claims(), { crit: ['b64'], b64: true }), /critical/);
  });
});
