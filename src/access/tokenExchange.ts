import type { TokenFamily } from './caller';
import { authenticateClient, type TokenEndpointDeps, type TokenRequest } from './clientCredentialsGrant';
import type { NhsLoginIdTokens } from './nhsLoginIdTokens';
import { OAuthError } from './oauthError';
import { isScopeToken, parseScopes, scopeCovers } from './scopes';
import type { IssuedToken } from './tokens';

/**
 * NHS Login asserted identity, framework-free: OAuth 2.0 Token Exchange (RFC 8693) of an NHS Login ID token
 * for a patient-scoped access token of the fhir family. The patient app authenticates as a registered client
 * whose scopes cover `patient/*.rs` (that is what makes a client a patient app); the ID token must verify
 * (nhsLoginIdTokens.ts), prove identity to level P9, and carry an NHS number held by exactly one aggregated
 * Patient. The token issued carries that Patient's id (claim `patient`) and `patient/` scopes, which grant
 * reads and searches only (scopes.ts).
 * Refusals are RFC 6749 §5.2 JSON like every token endpoint answer. A person who signed in properly but may
 * not have a record (proofing below P9, no or several records with their NHS number) gets `invalid_grant`
 * with status 403 rather than 400: the request is well formed, the answer is "forbidden".
 */
export const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const ID_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:id_token';
export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
/** What a patient app must hold, and what its patient-scoped tokens get unless they ask for less. */
export const PATIENT_APP_SCOPE = 'patient/*.rs';
const NHS_NUMBER = /^[0-9]{10}$/;

export interface TokenExchangeDeps extends TokenEndpointDeps {
  /** Undefined when NHS Login is not configured: the grant is then unsupported. */
  nhsLogin?: {
    idTokens: NhsLoginIdTokens;
    /** Aggregated Patient ids with this NHS number (at most two: one, or ambiguous). */
    patientsByNhsNumber(nhsNumber: string): Promise<string[]>;
  };
}

/** The RFC 8693 §2.2.1 response: an RFC 6749 token response plus the type of token issued. */
export type ExchangedToken = IssuedToken & { issued_token_type: typeof ACCESS_TOKEN_TYPE };

export async function tokenExchange(deps: TokenExchangeDeps, family: TokenFamily, request: TokenRequest): Promise<ExchangedToken> {
  const client = await authenticateClient(deps, request.authorization, request.form, 'fhir', request.address);
  if (family !== 'fhir' || client.family !== 'fhir') {
    throw new OAuthError('unsupported_grant_type', 'Token exchange is offered to fhir-family clients at /oauth2/token only');
  }
  const nhsLogin = deps.nhsLogin;
  if (!nhsLogin) throw new OAuthError('unsupported_grant_type', 'Token exchange needs NHS Login, which this server is not configured for (NHS_LOGIN_ISSUER)');
  if (!client.customerId) throw new OAuthError('unauthorized_client', 'This client belongs to no customer');
  if (!client.scopes.some((held) => scopeCovers(held, PATIENT_APP_SCOPE))) {
    throw new OAuthError('unauthorized_client', `Only a patient app may exchange an NHS Login ID token: register the client with scope ${PATIENT_APP_SCOPE}`);
  }

  const form = request.form;
  if (!form.subject_token) throw new OAuthError('invalid_request', 'subject_token is required: the NHS Login ID token');
  if (form.subject_token_type !== ID_TOKEN_TYPE) {
    throw new OAuthError('invalid_request', `subject_token_type must be ${ID_TOKEN_TYPE}${form.subject_token_type ? `, got '${form.subject_token_type}'` : ''}`);
  }
  if (form.requested_token_type !== undefined && form.requested_token_type !== ACCESS_TOKEN_TYPE) {
    throw new OAuthError('invalid_request', `requested_token_type must be ${ACCESS_TOKEN_TYPE}`);
  }
  if (form.actor_token !== undefined || form.actor_token_type !== undefined) {
    throw new OAuthError('invalid_request', 'Delegation (actor_token) is not supported: the app acts for the person who signed in');
  }
  const scopes = patientScopes(form.scope, client.scopes);

  const identity = await nhsLogin.idTokens.verify(form.subject_token, client.clientId);
  if (identity.proofingLevel !== 'P9') {
    throw new OAuthError('invalid_grant', `Record access needs P9: this NHS login is proven to level ${identity.proofingLevel ?? 'unknown'} (identity_proofing_level)`, 403);
  }
  if (!identity.nhsNumber || !NHS_NUMBER.test(identity.nhsNumber)) {
    throw new OAuthError('invalid_grant', "The ID token carries no NHS number ('nhs_number' must be 10 digits)");
  }
  const patients = await nhsLogin.patientsByNhsNumber(identity.nhsNumber);
  if (patients.length === 0) throw new OAuthError('invalid_grant', 'No record here holds the NHS number of this NHS login', 403);
  if (patients.length > 1) throw new OAuthError('invalid_grant', 'More than one record here holds the NHS number of this NHS login; it cannot be told which is yours', 403);

  const issued = deps.tokens.issue('fhir', { clientId: client.clientId, customerId: client.customerId, scopes, patientId: patients[0] });
  return { ...issued, issued_token_type: ACCESS_TOKEN_TYPE };
}

/** The `patient/` scopes to grant: PATIENT_APP_SCOPE by default, else the requested ones if it and the client cover each. */
function patientScopes(value: string | undefined, held: string[]): string[] {
  const requested = parseScopes(value);
  if (requested === undefined) return [PATIENT_APP_SCOPE];
  const malformed = requested.find((s) => !isScopeToken(s));
  if (malformed !== undefined) throw new OAuthError('invalid_scope', `'${malformed}' is not a valid scope token`);
  const denied = requested.filter((s) => !scopeCovers(PATIENT_APP_SCOPE, s) || !held.some((h) => scopeCovers(h, s)));
  if (denied.length) throw new OAuthError('invalid_scope', `A patient-scoped token may carry patient/ read and search scopes this client holds; not: ${denied.join(' ')}`);
  return requested;
}
