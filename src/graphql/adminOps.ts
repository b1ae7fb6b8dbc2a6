import type { AdminService } from '../admin/adminService';
import type { ClientRecord, CustomerRecord, EndpointRecord, NewClient } from '../store/tenancyRepository';
import type { AdminOps, ApiClient, Customer, CustomerEndpoint } from './adminSchema';

/**
 * The GraphQL admin door's operations: the admin service the REST admin API uses, its records in GraphQL's
 * shapes (instants as ISO 8601 strings, which GraphQL's String would otherwise render as epoch numbers).
 */
const iso = (date: Date) => date.toISOString();

const customer = (c: CustomerRecord): Customer => ({ ...c, createdAt: iso(c.createdAt) });
const endpoint = (e: EndpointRecord & { requeued?: number }): CustomerEndpoint => ({ ...e, createdAt: iso(e.createdAt) });
const client = (c: ClientRecord | NewClient): ApiClient => ({ ...c, createdAt: iso(c.createdAt), revokedAt: c.revokedAt && iso(c.revokedAt) });

export function adminOps(service: AdminService): AdminOps {
  return {
    customers: async () => (await service.listCustomers()).map(customer),
    customerCreate: async (input) => customer(await service.createCustomer(input)),
    endpoints: async (customerId) => (await service.listEndpoints(customerId)).map(endpoint),
    endpoint: async (id) => endpoint(await service.getEndpoint(id)),
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
  };
}
