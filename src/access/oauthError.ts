/**
 * An error answer of an OAuth 2.0 token endpoint (RFC 6749 §5.2): a JSON body `{error, error_description}`,
 * status 400, or 401 with a `WWW-Authenticate` challenge when the client tried HTTP authentication.
 * The token endpoint speaks OAuth, not FHIR, so these are not OperationOutcomes.
 */
export type OAuthErrorCode =
  'invalid_request' | 'invalid_client' | 'invalid_grant' | 'unauthorized_client' | 'unsupported_grant_type' | 'invalid_scope' | 'server_error' | 'temporarily_unavailable';

export class OAuthError extends Error {
  constructor(
    readonly error: OAuthErrorCode,
    readonly description: string,
    readonly status = 400,
    readonly headers: Record<string, string> = {},
  ) {
    super(`${error}: ${description}`);
    this.name = 'OAuthError';
  }

  get body(): { error: OAuthErrorCode; error_description: string } {
    return { error: this.error, error_description: this.description };
  }
}

/** invalid_client; when the client used HTTP Basic (or sent nothing) the answer must be a 401 challenge. */
export function invalidClient(description: string, challenge: boolean): OAuthError {
  return challenge
    ? new OAuthError('invalid_client', description, 401, { 'WWW-Authenticate': 'Basic realm="tributary", charset="UTF-8"' })
    : new OAuthError('invalid_client', description);
}
