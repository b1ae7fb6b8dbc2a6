import type { AuditSink } from '../audit/auditLog';
import type { BreakGlass } from '../consent/breakGlass';
import { OperationOutcomeError } from '../fhir/outcome';
import type { ClientRecord, TenancyRepository } from '../store/tenancyRepository';
import type { AssertionJtis } from './assertionJtis';
import type { FailedAuthentications } from './failedAuthentications';
import type { TokenFamily } from './caller';
import { authenticateAssertion } from './clientAssertion';
import { presentedClient, type PresentedClient } from './clientAuthentication';
import { invalidClient, OAuthError } from './oauthError';
import { grantScopes, isScopeToken, parseScopes } from './scopes';
import type { IssuedToken, TokenService } from './tokens';

/**
 * The token endpoint of one family, framework-free: the OAuth 2.0 client credentials grant
 * (RFC 6749 §4.4) for clients of that family. Throws OAuthError with the RFC 6749 §5.2 code for every refusal.
 * A fhir-family request may assert break-the-glass (`break_glass=true`, `btg_patient`, `btg_reason`): the
 * token then also opens every label of that patient for the window (consent/breakGlass.ts does the rest).
 */
export interface TokenRequest {
  /** The `Authorization` header, if any. */
  authorization?: string;
  /** The form parameters (already checked to be single-valued). */
  form: Record<string, string>;
  /** The network address of the requester (recorded in the audit log). */
  address?: string;
}

export interface TokenEndpointDeps {
  tenancy: TenancyRepository;
  tokens: TokenService;
  /** Client assertion ids seen (private_key_jwt replay protection). */
  jtis: AssertionJtis;
  /** Absolute base URL of the server, read per request: a client assertion's audience is the token URL. */
  publicUrl(): string;
  /** Every token issued or refused leaves an audit event; the token is only handed out once it is recorded. */
  audit?: AuditSink;
  /** Break-the-glass at token request; absent: the parameters are refused. */
  breakGlass?: Pick<BreakGlass, 'assert'>;
  /** Lockout after repeated failed client authentications (429); none when absent. */
  failures?: FailedAuthentications;
}

const BREAK_GLASS_PARAMETERS = ['break_glass', 'btg_patient', 'btg_reason'];

const TOKEN_PATHS: Record<TokenFamily, string> = { fhir: '/oauth2/token', legacy: '/legacy/oauth2/token' };

export async function clientCredentialsGrant(deps: TokenEndpointDeps, family: TokenFamily, request: TokenRequest): Promise<IssuedToken> {
  let clientId: string | undefined;
  let customerId: string | undefined;
  try {
    const issued = await grant(deps, family, request, (client) => ({ clientId, customerId } = { clientId: client.clientId, customerId: client.customerId ?? undefined }));
    await deps.audit?.record({
      subtype: 'token-issue',
      caller: { clientId: clientId as string, customerId, address: request.address },
      entities: [
        {
          type: { system: 'http://terminology.hl7.org/CodeSystem/audit-entity-type', code: '2', display: 'System Object' },
          description: `${family} access token`,
          detail: [{ type: 'scope', valueString: issued.scope ?? '' }],
        },
      ],
    });
    return issued;
  } catch (err) {
    if (!(err instanceof OAuthError) || !deps.audit) throw err;
    await deps.audit.record({
      subtype: 'token-issue',
      caller: { clientId: clientId ?? auditableClaim(request.form.client_id) ?? 'unknown', customerId, address: request.address },
      status: err.status,
      detail: err.message,
    });
    throw err;
  }
}

/** Longest claimed client id kept in the audit log: a guesser must not write 100 KB events at will. */
const MAX_AUDITED_CLAIM = 256;

/**
 * A client id as claimed by an unauthenticated request, fit for the audit log: cut to a bounded length, and
 * without NUL, which a jsonb body cannot hold (the refusal would otherwise fail to be recorded: a 500).
 */
function auditableClaim(claimed: string | undefined): string | undefined {
  if (claimed === undefined) return undefined;
  const clean = claimed.replaceAll('\u0000', '\uFFFD');
  return clean.length > MAX_AUDITED_CLAIM ? `${clean.slice(0, MAX_AUDITED_CLAIM)}…` : clean;
}

async function grant(deps: TokenEndpointDeps, family: TokenFamily, request: TokenRequest, onClient: (client: ClientRecord) => void): Promise<IssuedToken> {
  const client = await authenticateClient(deps, request.authorization, request.form, family, request.address);
  onClient(client);

  const grantType = request.form.grant_type;
  if (!grantType) throw new OAuthError('invalid_request', 'grant_type is required');
  if (grantType !== 'client_credentials') {
    throw new OAuthError('unsupported_grant_type', `grant_type '${grantType}' is not supported: use client_credentials`);
  }
  if (client.family !== family) {
    throw new OAuthError('unauthorized_client', `This is a ${client.family}-family client: request its tokens at ${TOKEN_PATHS[client.family]}`);
  }
  if (!client.customerId) throw new OAuthError('unauthorized_client', 'This client belongs to no customer');

  const requested = parseScopes(request.form.scope);
  const malformed = requested?.find((s) => !isScopeToken(s));
  if (malformed !== undefined) throw new OAuthError('invalid_scope', `'${malformed}' is not a valid scope token`);
  const { granted, denied } = grantScopes(requested, client.scopes);
  if (denied.length) throw new OAuthError('invalid_scope', `Not granted to this client: ${denied.join(' ')}`);

  if (BREAK_GLASS_PARAMETERS.some((p) => request.form[p] !== undefined)) return breakTheGlass(deps, family, request, client, granted);
  return deps.tokens.issue(family, {
    clientId: client.clientId,
    customerId: client.customerId,
    scopes: granted,
    organizationId: client.organizationId,
    teamId: client.teamId,
    practitionerId: client.practitionerId,
  });
}

/** The emergency access token of a client that asserted break-the-glass for one patient, with why. */
async function breakTheGlass(deps: TokenEndpointDeps, family: TokenFamily, request: TokenRequest, client: ClientRecord, scopes: string[]): Promise<IssuedToken> {
  if (request.form.break_glass !== 'true') throw new OAuthError('invalid_request', "break_glass must be 'true', with btg_patient and btg_reason");
  if (family !== 'fhir' || !deps.breakGlass) throw new OAuthError('invalid_request', 'Break-the-glass is asserted at /oauth2/token (the fhir family) only');
  if (!request.form.btg_patient) throw new OAuthError('invalid_request', 'btg_patient is required: the aggregated Patient id the emergency is about');
  if (!request.form.btg_reason?.trim()) throw new OAuthError('invalid_request', 'btg_reason is required: say why the emergency access is needed');
  try {
    const { breakGlass, ...issued } = await deps.breakGlass.assert(
      {
        family: 'fhir',
        clientId: client.clientId,
        customerId: client.customerId ?? undefined,
        scopes,
        admin: false,
        organizationId: client.organizationId ?? undefined,
        teamId: client.teamId ?? undefined,
        practitionerId: client.practitionerId ?? undefined,
        address: request.address,
      },
      request.form.btg_patient,
      request.form.btg_reason,
    );
    return { ...issued, break_glass_until: breakGlass.until } as IssuedToken;
  } catch (err) {
    // The token endpoint answers in OAuth terms: an unknown patient or a bad reason is an invalid request.
    if (err instanceof OperationOutcomeError) throw new OAuthError('invalid_request', err.message);
    throw err;
  }
}

/**
 * The client a token request authenticates as (shared by every grant); throws invalid_client, or 429 while the
 * client id or the address is locked out after failed attempts (failedAuthentications.ts).
 */
export async function authenticateClient(
  deps: TokenEndpointDeps,
  authorization: string | undefined,
  form: Record<string, string>,
  family: TokenFamily,
  address?: string,
): Promise<ClientRecord> {
  const presented: PresentedClient = presentedClient(authorization, form);
  const claimedId = presented.clientId;
  const attempt = await deps.failures?.begin(claimedId, address);
  let client: ClientRecord;
  try {
    client = await verifyClient(deps, presented, family);
  } catch (err) {
    // A wrong credential stays counted; anything else (a malformed assertion, an outage) was no guess.
    if (!(err instanceof OAuthError && err.error === 'invalid_client')) await attempt?.withdrawn().catch(() => undefined);
    throw err;
  }
  await attempt?.succeeded();
  return client;
}

async function verifyClient(deps: TokenEndpointDeps, presented: PresentedClient, family: TokenFamily): Promise<ClientRecord> {
  if (presented.method === 'private_key_jwt') {
    const tokenUrl = deps.publicUrl().replace(/\/+$/, '') + TOKEN_PATHS[family];
    return authenticateAssertion({ findClient: (id) => deps.tenancy.findClient(id), jtis: deps.jtis }, { assertion: presented.assertion, clientId: presented.clientId, tokenUrl });
  }
  const basic = presented.method === 'client_secret_basic';
  const client = await deps.tenancy.authenticateClient(presented.clientId, presented.secret);
  if (!client) throw invalidClient('Unknown client or wrong secret', basic);
  if (client.revokedAt) throw invalidClient('This client has been revoked', basic);
  // Issue 13: a client acting for a disabled organisation, team or practitioner gets no tokens.
  const disabled = await deps.tenancy.organizations.disabledBinding(client);
  if (disabled) throw invalidClient(`The ${disabled} this client acts for is disabled`, basic);
  return client;
}
