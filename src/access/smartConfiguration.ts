import type { TokenFamily } from './caller';
import { CLIENT_ASSERTION_ALGORITHMS } from './clientAssertion';

/**
 * The SMART configuration document of a token family (SMART App Launch 2 §"Conformance", `/.well-known/
 * smart-configuration`, and the fields SMART Backend Services asks for): where to get tokens, how clients
 * authenticate there, which algorithms their assertions may use, where the access tokens' keys are published,
 * and the scopes on offer. Built from the server's own tables so it cannot drift from what the token endpoint does.
 */
export interface SmartConfiguration {
  issuer: string;
  jwks_uri: string;
  token_endpoint: string;
  token_endpoint_auth_methods_supported: string[];
  token_endpoint_auth_signing_alg_values_supported: string[];
  grant_types_supported: string[];
  scopes_supported: string[];
  response_types_supported: string[];
  capabilities: string[];
  /** Not a SMART field: how the access tokens themselves are signed, for resource servers checking them. */
  access_token_signing_alg_values_supported: string[];
}

export const TOKEN_ENDPOINT_AUTH_METHODS = ['private_key_jwt', 'client_secret_basic', 'client_secret_post'];

/** Paths of each family's discovery documents and keys, below the server's public URL. */
export const WELL_KNOWN: Record<TokenFamily, { smartConfiguration: string; jwks: string }> = {
  fhir: { smartConfiguration: '/.well-known/smart-configuration', jwks: '/.well-known/jwks.json' },
  legacy: { smartConfiguration: '/legacy/.well-known/smart-configuration', jwks: '/legacy/.well-known/jwks.json' },
};

export interface SmartConfigurationInput {
  family: TokenFamily;
  /** The server's public URL, no trailing slash. */
  publicUrl: string;
  issuer: string;
  tokenUrl: string;
  accessTokenAlgorithms: string[];
}

export function smartConfiguration(input: SmartConfigurationInput): SmartConfiguration {
  return {
    issuer: input.issuer,
    jwks_uri: input.publicUrl + WELL_KNOWN[input.family].jwks,
    token_endpoint: input.tokenUrl,
    token_endpoint_auth_methods_supported: TOKEN_ENDPOINT_AUTH_METHODS,
    token_endpoint_auth_signing_alg_values_supported: [...CLIENT_ASSERTION_ALGORITHMS],
    grant_types_supported: ['client_credentials'],
    // SMART v2 system scopes, with the v1 forms the token endpoint also understands (access/scopes.ts).
    scopes_supported: ['system/*.cruds', 'system/*.rs', 'system/*.read', 'system/*.write', 'system/*.*'],
    response_types_supported: ['token'],
    capabilities: ['client-confidential-asymmetric', 'client-confidential-symmetric', 'permission-v1', 'permission-v2'],
    access_token_signing_alg_values_supported: input.accessTokenAlgorithms,
  };
}
