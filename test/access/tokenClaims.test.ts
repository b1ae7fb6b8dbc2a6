import { decodeJwt, SignJWT } from 'jose';
import { loadSigningKeys, type SigningKeys } from '../../src/access/signingKeys';
import { TokenService } from '../../src/access/tokens';
import { OperationOutcomeError } from '../../src/fhir/outcome';

/** Whom a token acts for travels in its claims (`org`, `team`, `practitioner`, `patient`, `btg`) and comes back on the Caller. */
const subject = { clientId: 'cli-abc', customerId: 'cus-xyz', scopes: ['system/*.rs'] };
let keys: SigningKeys;
let tokens: TokenService;

beforeAll(async () => {
  keys = await loadSigningKeys();
  tokens = new TokenService({ publicUrl: 'https://trib.example', keys });
});

test('organisation, team, practitioner, patient and break-the-glass claims come back on the caller', () => {
  const breakGlass = { patientId: 'pat-1', reason: 'unconscious in A&E', until: 2_000_000_000 };
  const { access_token } = tokens.issue('fhir', { ...subject, organizationId: 'org-1', teamId: 'team-1', practitionerId: null, patientId: 'pat-1', breakGlass });
  expect(decodeJwt(access_token)).toMatchObject({ org: 'org-1', team: 'team-1', patient: 'pat-1', btg: { patient: 'pat-1', reason: 'unconscious in A&E', until: 2_000_000_000 } });
  expect(decodeJwt(access_token)).not.toHaveProperty('practitioner');
  const caller = tokens.verify('fhir', access_token);
  expect(caller).toMatchObject({ organizationId: 'org-1', teamId: 'team-1', patientId: 'pat-1', breakGlass });
  expect(caller).not.toHaveProperty('practitionerId');
});

test('a token without them acts for no organisation (tokens issued before organisations existed)', () => {
  const caller = tokens.verify('fhir', tokens.issue('fhir', subject).access_token);
  expect(caller.organizationId).toBeUndefined();
  expect(caller.teamId).toBeUndefined();
});

test('a malformed claim makes the token invalid rather than acting for nobody', async () => {
  const now = Math.floor(Date.now() / 1000);
  const key = keys.fhir.current;
  const sign = (extra: object) =>
    new SignJWT({ sub: 'cli-abc', client_id: 'cli-abc', customer_id: 'cus-xyz', scope: 'system/*.rs', iat: now, exp: now + 60, ...extra })
      .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: key.kid })
      .setIssuer(tokens.issuer('fhir'))
      .setAudience(tokens.audience('fhir'))
      .sign(key.privateKey);
  for (const extra of [{ org: 5 }, { team: '' }, { btg: { patient: 'p' } }]) {
    let err: unknown;
    try {
      tokens.verify('fhir', await sign(extra));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(OperationOutcomeError);
    expect((err as OperationOutcomeError).status).toBe(401);
  }
});
