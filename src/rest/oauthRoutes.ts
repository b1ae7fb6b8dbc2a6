import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { TokenFamily } from '../access/caller';
import { clientCredentialsGrant } from '../access/clientCredentialsGrant';
import { OAuthError } from '../access/oauthError';
import { isDatabaseUnavailable, OUTAGE_RETRY_AFTER_SECONDS } from '../store/databaseUnavailable';
import { TOKEN_EXCHANGE_GRANT, tokenExchange, type TokenExchangeDeps } from '../access/tokenExchange';

/**
 * The two token endpoints, `POST /oauth2/token` (fhir family) and `POST /legacy/oauth2/token` (legacy):
 * a thin HTTP adapter over the grants, chosen by `grant_type`: `clientCredentialsGrant`, and `tokenExchange`
 * (RFC 8693; NHS Login ID token → patient-scoped token). Bodies must be application/x-www-form-urlencoded
 * (RFC 6749 §4.4.2); every answer, error or not, carries `Cache-Control: no-store` and `Pragma: no-cache`
 * (RFC 6749 §5.1), and errors are RFC 6749 §5.2 JSON rather than OperationOutcomes.
 */
const FORM = 'application/x-www-form-urlencoded';
const PATHS: Record<TokenFamily, string> = { fhir: '/oauth2/token', legacy: '/legacy/oauth2/token' };

/** Form parameters, refusing repeats: RFC 6749 §3.2 says a parameter MUST NOT appear more than once. */
function parseForm(body: string): Record<string, string> {
  const form: Record<string, string> = {};
  for (const [key, value] of new URLSearchParams(body)) {
    if (Object.prototype.hasOwnProperty.call(form, key)) throw new OAuthError('invalid_request', `Parameter '${key}' appears more than once`);
    form[key] = value;
  }
  return form;
}

function sendError(reply: FastifyReply, err: OAuthError): FastifyReply {
  return reply.status(err.status).headers(err.headers).type('application/json; charset=utf-8').send(err.body);
}

export function oauthRoutes(deps: TokenExchangeDeps): FastifyPluginAsync {
  return async (app: FastifyInstance) => {
    // In this scope every body arrives as a string and the handler decides; a JSON or XML token request
    // is then an OAuth invalid_request rather than a framework error in some other format.
    app.removeAllContentTypeParsers();
    app.addContentTypeParser('*', { parseAs: 'string' }, (_request, body, done) => done(null, body));

    app.addHook('onSend', async (_request, reply, payload) => {
      reply.header('Cache-Control', 'no-store').header('Pragma', 'no-cache');
      return payload;
    });

    app.setErrorHandler((err: Error & { statusCode?: number }, request, reply) => {
      if (err instanceof OAuthError) return sendError(reply, err);
      const status = err.statusCode;
      if (status && status >= 400 && status < 500) return sendError(reply, new OAuthError('invalid_request', err.message, status));
      // RFC 6749 §5.2 has no outage code; `temporarily_unavailable` is the one §4.1.2.1 defines for it, with 503.
      if (isDatabaseUnavailable(err)) {
        return sendError(
          reply,
          new OAuthError('temporarily_unavailable', 'The token service cannot reach its database; try again later', 503, { 'Retry-After': String(OUTAGE_RETRY_AFTER_SECONDS) }),
        );
      }
      request.log.error(err);
      return sendError(reply, new OAuthError('server_error', 'The token could not be issued; try again later', 500));
    });

    for (const family of Object.keys(PATHS) as TokenFamily[]) {
      app.post(PATHS[family], async (request: FastifyRequest) => {
        const contentType = request.headers['content-type']?.split(';')[0].trim().toLowerCase();
        if (contentType !== FORM) throw new OAuthError('invalid_request', `A token request must be ${FORM} (RFC 6749 §4.4.2)`);
        const form = parseForm(typeof request.body === 'string' ? request.body : '');
        const tokenRequest = { authorization: request.headers.authorization, form, address: request.ip };
        return form.grant_type === TOKEN_EXCHANGE_GRANT ? tokenExchange(deps, family, tokenRequest) : clientCredentialsGrant(deps, family, tokenRequest);
      });
      app.route({
        method: ['GET', 'PUT', 'PATCH', 'DELETE'],
        url: PATHS[family],
        handler: async (_request, reply) => {
          reply.header('Allow', 'POST');
          return sendError(reply, new OAuthError('invalid_request', 'The token endpoint accepts POST only', 405));
        },
      });
    }
  };
}
