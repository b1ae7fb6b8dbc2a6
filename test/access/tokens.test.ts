import { decodeJwt, decodeProtectedHeader, SignJWT, UnsecuredJWT } from 'jose';
import { loadSigningKeys } from '../../src/access/signingKeys';
import { TokenService } from '../../src/access/tokens';
import { OperationOutcomeError } from '../../src/fhir/outcome';

const subject = { clientId: 'cli-abc', customerId: 'cus-xyz', scopes: ['system/*.rs', 'system/Patient.cruds'] };

function refusal(fn: () => unknown): OperationOutcomeError {
  try {
    fn();
  } catch (e) {
    if (e instanceof OperationOutcomeError) return e;
    throw e;
  }
  throw new Error('expected a refusal');
}

describe('TokenService', () => {
  let clock = Date.UTC(2026, 0, 1);
  let tokens: TokenService;
  beforeAll(async () => {
    tokens = new TokenService({ publicUrl: 'https://trib.example/', ttlSeconds: 300, keys: await loadSigningKeys(), now: () => clock });
  });

  test('an issued token verifies in its family and names client, customer and scopes', () => {
    const issued = tokens.issue('fhir', subject);
    expect(issued).toMatchObject({ token_type: 'Bearer', expires_in: 300, scope: 'system/*.rs system/Patient.cruds' });
    expect(tokens.verify('fhir', issued.access_token)).toEqual({ family: 'fhir', ...subject, admin: false, expiresAt: clock / 1000 + 300 });
  });

  test('the token is a JWT with issuer, audience, jti, iat and exp', () => {
    const token = tokens.issue('legacy', subject).access_token;
    expect(decodeProtectedHeader(token)).toMatchObject({ alg: 'ES256', typ: 'at+jwt', kid: expect.any(String) });
    const payload = decodeJwt(token);
    expect(payload).toMatchObject({
      iss: 'https://trib.example/legacy/oauth2',
      aud: 'https://trib.example/legacy',
      sub: 'cli-abc',
      customer_id: 'cus-xyz',
      iat: clock / 1000,
      exp: clock / 1000 + 300,
    });
    expect(typeof payload.jti).toBe('string');
  });

  test('a token of one family is refused by the other, with 401 and an invalid_token challenge', () => {
    const legacy = tokens.issue('legacy', subject).access_token;
    const fhir = tokens.issue('fhir', subject).access_token;
    const err = refusal(() => tokens.verify('fhir', legacy));
    expect(err.status).toBe(401);
    expect(err.headers['WWW-Authenticate']).toMatch(/^Bearer realm="tributary", error="invalid_token"/);
    expect(refusal(() => tokens.verify('legacy', fhir)).status).toBe(401);
  });

  test('the other family is refused even when re-signed with the right key: issuer and audience differ', async () => {
    const keys = await loadSigningKeys();
    const service = new TokenService({ publicUrl: 'https://trib.example', keys });
    const payload = decodeJwt(service.issue('legacy', subject).access_token);
    const forged = await new SignJWT(payload).setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: keys.fhir.current.kid }).sign(keys.fhir.current.privateKey);
    expect(refusal(() => service.verify('fhir', forged)).outcome.issue[0].diagnostics).toMatch(/issued by|meant for/);
  });

  test('a token expires after its lifetime', () => {
    const token = tokens.issue('fhir', subject).access_token;
    clock += 299_000;
    expect(tokens.verify('fhir', token).clientId).toBe('cli-abc');
    clock += 2_000;
    expect(refusal(() => tokens.verify('fhir', token)).outcome.issue[0].diagnostics).toBe('The access token has expired');
  });

  test('tampered, unsigned and foreign tokens are refused', () => {
    const token = tokens.issue('fhir', subject).access_token;
    const [h, p, s] = token.split('.');
    const payload = JSON.parse(Buffer.from(p, 'base64url').toString());
    const tampered = [h, Buffer.from(JSON.stringify({ ...payload, customer_id: 'cus-other' })).toString('base64url'), s].join('.');
    expect(refusal(() => tokens.verify('fhir', tampered)).status).toBe(401);
    const unsigned = new UnsecuredJWT(payload).encode();
    expect(refusal(() => tokens.verify('fhir', unsigned)).status).toBe(401);
    expect(refusal(() => tokens.verify('fhir', 'not-a-jwt')).status).toBe(401);
  });

  test('subject claims of the access model (org, team, practitioner, patient, btg) come back on the caller', () => {
    const full = {
      ...subject,
      organizationId: 'org-a',
      teamId: 'team-a',
      practitionerId: 'prac-a',
      patientId: 'pat-1',
      breakGlass: { patientId: 'pat-1', reason: 'unconscious', until: clock / 1000 + 60 },
    };
    expect(tokens.verify('fhir', tokens.issue('fhir', full).access_token)).toEqual({ family: 'fhir', ...full, admin: false, expiresAt: clock / 1000 + 300 });
  });

  test('tokens from a service with other keys are refused', async () => {
    const other = new TokenService({ publicUrl: 'https://trib.example/', keys: await loadSigningKeys(), now: () => clock });
    expect(refusal(() => tokens.verify('fhir', other.issue('fhir', subject).access_token)).status).toBe(401);
  });
});
