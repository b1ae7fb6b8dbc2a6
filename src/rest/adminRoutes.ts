import type { FastifyInstance, FastifyPluginAsync, FastifyReply } from 'fastify';
import { isAdminToken } from '../access/adminCredential';
import { bearerToken } from '../access/caller';
import type { TokenService } from '../access/tokens';
import type { ConsentGrants } from '../aggregator/access';
import type { Lag } from '../aggregator/worker';
import { badRequest, notFound, OperationOutcomeError, operationOutcome, unauthorized } from '../fhir/outcome';
import type { FhirVersion } from '../fhir/types';
import type { ClientFamily, ClientRecord, EndpointRecord, NewClient, TenancyRepository } from '../store/tenancyRepository';

/**
 * The admin API the admin CLI calls: JSON in, JSON out, under `/admin`, guarded by the admin credential
 * (`Authorization: Bearer <admin token>`). Refusals are OperationOutcomes with their status, like every
 * other error of the server. Later the same operations become GraphQL mutations over the same repository.
 */
export interface AdminRoutesDeps {
  tenancy: TenancyRepository;
  adminToken: string;
  /** When given, endpoints and clients are returned with the URLs to use them (FHIR base, token endpoint). */
  publicUrl?: string;
  /** Mints short-lived FHIR tokens for the admin's own tools (the bulk importer). */
  tokens?: TokenService;
  grants?: ConsentGrants;
  /** Refreshes planner statistics (after bulk loads, before autovacuum gets there). */
  analyze?: () => Promise<void>;
  aggregation?: { lag(): Promise<Lag>; waitForIdle(timeoutMs?: number): Promise<Lag> };
}

type Body = Record<string, unknown>;

function objectBody(body: unknown): Body {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw badRequest('The body must be a JSON object');
  return body as Body;
}

function stringField(body: Body, field: string, required: true): string;
function stringField(body: Body, field: string, required: false): string | undefined;
function stringField(body: Body, field: string, required: boolean): string | undefined {
  const value = body[field];
  if (value === undefined || value === null) {
    if (required) throw badRequest(`'${field}' is required`, field);
    return undefined;
  }
  if (typeof value !== 'string') throw badRequest(`'${field}' must be a string`, field);
  return value;
}

/** Scopes as OAuth writes them (one space-separated string) or as a JSON array of strings. */
function scopesField(body: Body): string[] | undefined {
  const value = body.scopes;
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string') return value.split(' ').filter((s) => s !== '');
  if (Array.isArray(value) && value.every((s) => typeof s === 'string')) return value as string[];
  throw badRequest(`'scopes' must be a space-separated string or an array of strings`, 'scopes');
}

function send(reply: FastifyReply, err: OperationOutcomeError): FastifyReply {
  return reply.status(err.status).headers(err.headers).type('application/fhir+json; charset=utf-8').send(JSON.stringify(err.outcome));
}

export function adminRoutes(deps: AdminRoutesDeps): FastifyPluginAsync {
  const { tenancy } = deps;
  const base = deps.publicUrl?.replace(/\/+$/, '');
  const endpointView = (e: EndpointRecord) => (base ? { ...e, fhirBaseUrl: `${base}/fhir/customer/${e.id}` } : e);
  const tokenUrl = (family: ClientFamily) => (family === 'fhir' ? '/oauth2/token' : '/legacy/oauth2/token');
  // client_id / client_secret keep their OAuth names so scripts can pass them straight to the token endpoint.
  const clientView = ({ clientId, ...rest }: ClientRecord) => ({
    client_id: clientId,
    ...rest,
    ...(base ? { tokenUrl: base + tokenUrl(rest.family) } : {}),
  });
  const newClientView = ({ clientSecret, ...client }: NewClient) => {
    const { client_id, ...rest } = clientView(client);
    return { client_id, client_secret: clientSecret, ...rest };
  };

  return async (app: FastifyInstance) => {
    app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, request, reply) => {
      if (err instanceof OperationOutcomeError) return send(reply, err);
      const status = err.statusCode;
      if (status && status >= 400 && status < 500) {
        const message = err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE' ? 'Send the body as application/json' : err.message;
        return send(reply, new OperationOutcomeError(status, operationOutcome([{ severity: 'error', code: 'invalid', diagnostics: message }])));
      }
      request.log.error(err);
      return send(reply, new OperationOutcomeError(500, operationOutcome([{ severity: 'error', code: 'exception', diagnostics: 'Internal server error' }])));
    });

    // onRequest runs before the body is read, so nothing is parsed for an unauthenticated caller.
    app.addHook('onRequest', async (request) => {
      const token = bearerToken(request.headers.authorization);
      if (!token) throw unauthorized('The admin API needs the admin token as a bearer token');
      if (!isAdminToken(token, deps.adminToken)) throw unauthorized('The admin token is not valid');
    });

    app.post('/admin/customers', async (request, reply) => {
      const body = objectBody(request.body);
      reply.status(201);
      return tenancy.createCustomer({ name: stringField(body, 'name', true) });
    });

    app.get('/admin/customers', async () => ({ customers: await tenancy.listCustomers() }));

    app.post('/admin/endpoints', async (request, reply) => {
      const body = objectBody(request.body);
      const endpoint = await tenancy.createEndpoint({
        customerId: stringField(body, 'customerId', true),
        fhirVersion: stringField(body, 'fhirVersion', true) as FhirVersion,
        name: stringField(body, 'name', false),
        defaultSourceOrg: stringField(body, 'defaultSourceOrg', false),
      });
      reply.status(201);
      return endpointView(endpoint);
    });

    // A token on behalf of the endpoint's owner, for admin tools that load data through the FHIR API
    // (`admin import`): the admin credential already allows everything this token does.
    app.post('/admin/endpoints/:id/token', async (request) => {
      const { id } = request.params as { id: string };
      const endpoint = await tenancy.getEndpoint(id);
      if (!endpoint) throw notFound(`No endpoint '${id}'`);
      if (!deps.tokens) throw notFound('This server does not mint admin tokens');
      return deps.tokens.issue('fhir', { clientId: 'admin', customerId: endpoint.customerId, scopes: ['system/*.cruds'] });
    });

    app.post('/admin/analyze', async () => {
      if (!deps.analyze) throw notFound('Not available');
      const started = Date.now();
      await deps.analyze();
      return { analyzed: true, ms: Date.now() - started };
    });

    app.get('/admin/aggregation', async () => {
      if (!deps.aggregation) throw notFound('No aggregation here');
      return deps.aggregation.lag();
    });

    // Waits until every write so far is visible on the aggregated endpoint (tests, loaders, scripts).
    app.post('/admin/aggregation/wait', async (request) => {
      if (!deps.aggregation) throw notFound('No aggregation here');
      const { timeoutMs } = (request.query ?? {}) as { timeoutMs?: string };
      const timeout = timeoutMs === undefined ? 30_000 : Number(timeoutMs);
      if (!Number.isFinite(timeout) || timeout < 0) throw badRequest('timeoutMs must be a number of milliseconds', 'timeoutMs');
      try {
        return await deps.aggregation.waitForIdle(timeout);
      } catch (err) {
        throw new OperationOutcomeError(503, operationOutcome([{ severity: 'error', code: 'timeout', diagnostics: (err as Error).message }]));
      }
    });

    const grantOf = (body: Body) => ({
      patientId: stringField(body, 'patientId', true),
      grantee: stringField(body, 'grantee', true),
      label: stringField(body, 'label', true),
    });
    app.post('/admin/consents', async (request, reply) => {
      if (!deps.grants) throw notFound('No consents here');
      reply.status(201);
      return deps.grants.grant(grantOf(objectBody(request.body)));
    });
    app.delete('/admin/consents', async (request) => {
      if (!deps.grants) throw notFound('No consents here');
      return deps.grants.revoke(grantOf(objectBody(request.body)));
    });
    app.get('/admin/consents', async (request) => {
      if (!deps.grants) throw notFound('No consents here');
      const { patientId } = request.query as { patientId?: string };
      return { consents: await deps.grants.list(patientId || undefined) };
    });

    app.get('/admin/endpoints', async (request) => {
      const { customerId } = request.query as { customerId?: string };
      return { endpoints: (await tenancy.listEndpoints(customerId || undefined)).map(endpointView) };
    });

    app.post('/admin/clients', async (request, reply) => {
      const body = objectBody(request.body);
      const client = await tenancy.createClient({
        customerId: stringField(body, 'customerId', true),
        family: stringField(body, 'family', true) as ClientFamily,
        name: stringField(body, 'name', false),
        scopes: scopesField(body),
      });
      reply.status(201);
      return newClientView(client);
    });

    app.get('/admin/clients', async (request) => {
      const { customerId } = request.query as { customerId?: string };
      return { clients: (await tenancy.listClients(customerId || undefined)).map(clientView) };
    });

    app.delete('/admin/clients/:id', async (request) => {
      const { id } = request.params as { id: string };
      return clientView(await tenancy.revokeClient(id));
    });
  };
}
