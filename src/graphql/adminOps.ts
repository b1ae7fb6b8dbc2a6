import type { AdminService } from '../admin/adminService';
import type { OrganizationRecord, PractitionerRecord, TeamRecord } from '../store/organizationRepository';
import type { ClientRecord, CustomerRecord, EndpointRecord, NewClient } from '../store/tenancyRepository';
import type { AdminOps, ApiClient, Customer, CustomerEndpoint } from './adminSchema';
import type { CustomerOrganization, CustomerPractitioner, CustomerTeam, OrganizationOps } from './organizationSchema';

/**
 * The GraphQL admin door's operations: the admin service the REST admin API uses, its records in GraphQL's
 * shapes (instants as ISO 8601 strings, which GraphQL's String would otherwise render as epoch numbers).
 */
const iso = (date: Date) => date.toISOString();

const customer = (c: CustomerRecord): Customer => ({ ...c, createdAt: iso(c.createdAt) });
const endpoint = (e: EndpointRecord & { requeued?: number }): CustomerEndpoint => ({ ...e, createdAt: iso(e.createdAt) });
const client = (c: ClientRecord | NewClient): ApiClient => ({ ...c, createdAt: iso(c.createdAt), revokedAt: c.revokedAt && iso(c.revokedAt) });

const disabled = (d: Date | null) => d && iso(d);
const organization = (o: OrganizationRecord): CustomerOrganization => ({ ...o, disabledAt: disabled(o.disabledAt), createdAt: iso(o.createdAt) });
const team = (t: TeamRecord): CustomerTeam => ({ ...t, disabledAt: disabled(t.disabledAt), createdAt: iso(t.createdAt) });
const practitioner = (p: PractitionerRecord): CustomerPractitioner => ({ ...p, disabledAt: disabled(p.disabledAt), createdAt: iso(p.createdAt) });

function organizationOps(service: AdminService['organizations']): OrganizationOps {
  return {
    organizations: async (customerId) => (await service.listOrganizations(customerId)).map(organization),
    organization: async (id) => organization(await service.getOrganization(id)),
    organizationCreate: async (input) => organization(await service.createOrganization(input)),
    organizationUpdate: async (id, input) => organization(await service.updateOrganization(id, input)),
    organizationDisable: async (id) => organization(await service.disableOrganization(id)),
    teams: async (organizationId) => (await service.listTeams(organizationId)).map(team),
    team: async (id) => team(await service.getTeam(id)),
    teamCreate: async (input) => team(await service.createTeam(input)),
    teamUpdate: async (id, input) => team(await service.updateTeam(id, input)),
    teamDisable: async (id) => team(await service.disableTeam(id)),
    teamAddMember: async (id, input) => team(await service.addTeamMember(id, input)),
    teamRemoveMember: async (id, input) => team(await service.removeTeamMember(id, input)),
    practitioners: async (organizationId) => (await service.listPractitioners(organizationId)).map(practitioner),
    practitioner: async (id) => practitioner(await service.getPractitioner(id)),
    practitionerCreate: async (input) => practitioner(await service.createPractitioner(input)),
    practitionerUpdate: async (id, input) => practitioner(await service.updatePractitioner(id, input)),
    practitionerDisable: async (id) => practitioner(await service.disablePractitioner(id)),
  };
}

export function adminOps(service: AdminService): AdminOps {
  return {
    customers: async () => (await service.listCustomers()).map(customer),
    customerCreate: async (input) => customer(await service.createCustomer(input)),
    endpoints: async (customerId) => (await service.listEndpoints(customerId)).map(endpoint),
    endpoint: async (id) => endpoint(await service.getEndpoint(id)),
    aggregationReport: (id) => service.aggregationReport(id),
    endpointCreate: async (input) => endpoint(await service.createEndpoint(input)),
    endpointUpdate: async (id, input) => endpoint(await service.updateEndpoint(id, input)),
    endpointDisable: async (id) => endpoint(await service.disableEndpoint(id)),
    clients: async (customerId) => (await service.listClients(customerId)).map(client),
    clientCreate: async (input) => client(await service.createClient(input)),
    clientRevoke: async (clientId) => client(await service.revokeClient(clientId)),
    clientRotateSecret: async (clientId) => client(await service.rotateClientSecret(clientId)),
    consents: (patientId) => service.listConsents({ patientId }),
    consentGrant: (grant) => service.grantConsent(grant),
    consentRevoke: async (grant) => (await service.revokeConsent(grant)).revoked,
    organizations: organizationOps(service.organizations),
  };
}
