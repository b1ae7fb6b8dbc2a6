import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { isAdminToken } from '../access/adminCredential';
import { bearerToken } from '../access/caller';
import type { AdminService } from '../admin/adminService';
import { badRequest, OperationOutcomeError, operationOutcome, unauthorized } from '../fhir/outcome';
import type { ClientFamily, ClientRecord, EndpointRecord, NewClient } from '../store/tenancyRepository';
import { databaseUnavailable, isDatabaseUnavailable } from '../store/databaseUnavailable';
import { organizationRoutes } from './organizationRoutes';

/**
 * The admin API the admin CLI calls: JSON in, JSON out, under `/admin`, guarded by the admin credential
 * (`Authorization: Bearer <admin token>`). A thin door over the admin service, which validates everything
 * (so the GraphQL admin mutations refuse the same input with the same words); refusals are OperationOutcomes
 * with their status, like every other error of the server.
 */
export interface AdminRoutesDeps {
  admin: AdminService;
  adminToken: string;
  /** When given, endpoints and clients are returned with the URLs to use them (FHIR base, token endpoint). */
  publicUrl?: string;
}

function objectBody(body: unknown): Record<string, unknown> {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw badRequest('The body must be a JSON object');
  return body as Record<string, unknown>;
}

const param = (request: FastifyRequest) => (request.params as { id: string }).id;
const query = (request: FastifyRequest) => (request.query ?? {}) as Record<string, string | undefined>;

function send(reply: FastifyReply, err: OperationOutcomeError): FastifyReply {
  return reply.status(err.status).headers(err.headers).type('application/fhir+json; charset=utf-8').send(JSON.stringify(err.outcome));
}

export function adminRoutes(deps: AdminRoutesDeps): FastifyPluginAsync {
  const { admin } = deps;
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
      if (isDatabaseUnavailable(err)) return send(reply, databaseUnavailable());
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
      const customer = await admin.createCustomer(objectBody(request.body));
      reply.status(201);
      return customer;
    });
    app.get('/admin/customers', async () => ({ customers: await admin.listCustomers() }));

    app.post('/admin/endpoints', async (request, reply) => {
      const endpoint = await admin.createEndpoint(objectBody(request.body));
      reply.status(201);
      return endpointView(endpoint);
    });
    app.get('/admin/endpoints', async (request) => ({ endpoints: (await admin.listEndpoints(query(request).customerId)).map(endpointView) }));
    app.get('/admin/endpoints/:id', async (request) => endpointView(await admin.getEndpoint(param(request))));
    app.patch('/admin/endpoints/:id', async (request) => endpointView(await admin.updateEndpoint(param(request), objectBody(request.body))));
    app.post('/admin/endpoints/:id/disable', async (request) => endpointView(await admin.disableEndpoint(param(request))));
    app.post('/admin/endpoints/:id/token', async (request) => admin.endpointToken(param(request)));
    app.get('/admin/endpoints/:id/aggregation-report', async (request) => admin.aggregationReport(param(request)));
    app.post('/admin/organizations/:id/token', async (request) => admin.organizationToken(param(request)));

    app.post('/admin/clients', async (request, reply) => {
      const client = await admin.createClient(objectBody(request.body));
      reply.status(201);
      return newClientView(client);
    });
    app.get('/admin/clients', async (request) => ({ clients: (await admin.listClients(query(request).customerId)).map(clientView) }));
    app.delete('/admin/clients/:id', async (request) => clientView(await admin.revokeClient(param(request))));
    app.post('/admin/clients/:id/revoke', async (request) => clientView(await admin.revokeClient(param(request))));
    app.post('/admin/clients/:id/secret', async (request) => newClientView(await admin.rotateClientSecret(param(request))));

    app.post('/admin/keys/rotate', async (request) => admin.rotateSigningKeys(request.body === undefined || request.body === null ? {} : objectBody(request.body)));

    organizationRoutes(app, admin.organizations);

    app.post('/admin/consents', async (request, reply) => {
      const grant = await admin.grantConsent(objectBody(request.body));
      reply.status(201);
      return grant;
    });
    app.delete('/admin/consents', async (request) => admin.revokeConsent(objectBody(request.body)));
    app.get('/admin/consents', async (request) => ({ consents: await admin.listConsents({ patientId: query(request).patientId, grantee: query(request).grantee }) }));
    // The patient's own controls, for support staff acting on the patient's request.
    app.post('/admin/patients/:id/withdraw-consents', async (request) => ({ consents: await admin.withdrawConsents(param(request)) }));
    app.get('/admin/patients/:id/access', async (request) => admin.patientAccess(param(request)));
    app.post('/admin/patients/:id/access', async (request) => admin.patientAccess(param(request), objectBody(request.body)));

    // The audit log as FHIR: a searchset Bundle of BALP AuditEvents (patient, date, agent, action, _count).
    app.get('/admin/AuditEvent', async (request, reply) => {
      const bundle = await admin.searchAuditEvents(query(request), `${base ?? ''}/admin`);
      return reply.type('application/fhir+json; charset=utf-8').send(JSON.stringify(bundle));
    });

    app.post('/admin/analyze', async () => admin.analyze());
    app.get('/admin/aggregation', async () => admin.aggregationLag());
    app.post('/admin/aggregation/wait', async (request) => admin.waitForAggregation(query(request).timeoutMs));
  };
}
