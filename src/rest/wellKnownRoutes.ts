import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import { TOKEN_FAMILIES, type TokenFamily } from '../access/caller';
import { smartConfiguration, WELL_KNOWN } from '../access/smartConfiguration';
import type { TokenService } from '../access/tokens';

/**
 * Public discovery documents, answered without a token: each family's JWKS (the access tokens' public keys,
 * RFC 7517) and SMART configuration. The fhir family's SMART configuration is also offered under each FHIR
 * base (`[base]/.well-known/smart-configuration`), where SMART clients look for it. JWKS are cacheable for a
 * short while only: after a rotation a resource server refetches on an unknown kid anyway.
 */
export interface WellKnownDeps {
  tokens: TokenService;
  /** Absolute base URL of the server; read per call, as it may be settled only once the server listens. */
  publicUrl(): string;
}

const JWKS_CACHE = 'public, max-age=300';
const CONFIGURATION_CACHE = 'public, max-age=3600';

export function wellKnownRoutes(deps: WellKnownDeps): FastifyPluginAsync {
  return async (app: FastifyInstance) => {
    const configuration = (family: TokenFamily) => {
      const publicUrl = deps.publicUrl().replace(/\/+$/, '');
      return smartConfiguration({
        family,
        publicUrl,
        issuer: `${publicUrl}${family === 'fhir' ? '/oauth2' : '/legacy/oauth2'}`,
        tokenUrl: `${publicUrl}${family === 'fhir' ? '/oauth2/token' : '/legacy/oauth2/token'}`,
        accessTokenAlgorithms: deps.tokens.algorithms,
      });
    };
    for (const family of TOKEN_FAMILIES) {
      app.get(WELL_KNOWN[family].jwks, async (_request, reply) => {
        reply.header('Cache-Control', JWKS_CACHE).type('application/jwk-set+json');
        return deps.tokens.jwks(family);
      });
      app.get(WELL_KNOWN[family].smartConfiguration, async (_request, reply) => {
        reply.header('Cache-Control', CONFIGURATION_CACHE);
        return configuration(family);
      });
    }
    for (const base of ['/fhir/aggregated', '/fhir/customer/:endpointId']) {
      app.get(`${base}/.well-known/smart-configuration`, async (_request, reply) => {
        reply.header('Cache-Control', CONFIGURATION_CACHE);
        return configuration('fhir');
      });
    }
  };
}
