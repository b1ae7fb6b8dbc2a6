import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { OrganizationAdmin } from '../admin/organizationAdmin';
import { badRequest } from '../fhir/outcome';

/**
 * The admin API's routes for organisations, teams (and their members) and practitioners; registered inside
 * the admin routes (adminRoutes.ts), behind the same admin credential and error handling. Thin over the admin
 * service (organizationAdmin.ts), which validates everything.
 */
function objectBody(body: unknown): Record<string, unknown> {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw badRequest('The body must be a JSON object');
  return body as Record<string, unknown>;
}

const params = (request: FastifyRequest) => request.params as { id: string; practitionerId?: string };
const query = (request: FastifyRequest) => (request.query ?? {}) as Record<string, string | undefined>;

export function organizationRoutes(app: FastifyInstance, admin: OrganizationAdmin): void {
  app.post('/admin/organizations', async (request, reply) => {
    reply.status(201);
    return admin.createOrganization(objectBody(request.body));
  });
  app.get('/admin/organizations', async (request) => ({ organizations: await admin.listOrganizations(query(request).customerId) }));
  app.get('/admin/organizations/:id', async (request) => admin.getOrganization(params(request).id));
  app.patch('/admin/organizations/:id', async (request) => admin.updateOrganization(params(request).id, objectBody(request.body)));
  app.post('/admin/organizations/:id/disable', async (request) => admin.disableOrganization(params(request).id));

  app.post('/admin/teams', async (request, reply) => {
    reply.status(201);
    return admin.createTeam(objectBody(request.body));
  });
  app.get('/admin/teams', async (request) => ({ teams: await admin.listTeams(query(request).organizationId) }));
  app.get('/admin/teams/:id', async (request) => admin.getTeam(params(request).id));
  app.patch('/admin/teams/:id', async (request) => admin.updateTeam(params(request).id, objectBody(request.body)));
  app.post('/admin/teams/:id/disable', async (request) => admin.disableTeam(params(request).id));
  app.post('/admin/teams/:id/members', async (request) => admin.addTeamMember(params(request).id, objectBody(request.body)));
  app.delete('/admin/teams/:id/members/:practitionerId', async (request) => admin.removeTeamMember(params(request).id, { practitionerId: params(request).practitionerId }));

  app.post('/admin/practitioners', async (request, reply) => {
    reply.status(201);
    return admin.createPractitioner(objectBody(request.body));
  });
  app.get('/admin/practitioners', async (request) => ({ practitioners: await admin.listPractitioners(query(request).organizationId) }));
  app.get('/admin/practitioners/:id', async (request) => admin.getPractitioner(params(request).id));
  app.patch('/admin/practitioners/:id', async (request) => admin.updatePractitioner(params(request).id, objectBody(request.body)));
  app.post('/admin/practitioners/:id/disable', async (request) => admin.disablePractitioner(params(request).id));
}
