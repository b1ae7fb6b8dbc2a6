import type { ConsentGrants } from '../aggregator/access';
import type { FhirVersion } from '../fhir/types';
import type { ClientFamily, TenancyRepository } from '../store/tenancyRepository';
import type { AdminOps } from './aggregationSchema';

/** The admin API's operations for the GraphQL door: the same repositories the REST admin API uses. */
export function adminOps(tenancy: TenancyRepository, grants: ConsentGrants): AdminOps {
  return {
    customers: () => tenancy.listCustomers(),
    customerCreate: (name) => tenancy.createCustomer({ name }),
    endpoints: (customerId) => tenancy.listEndpoints(customerId),
    endpointCreate: (input) => tenancy.createEndpoint({ ...input, fhirVersion: input.fhirVersion as FhirVersion }),
    clients: (customerId) => tenancy.listClients(customerId),
    clientCreate: (input) => tenancy.createClient({ customerId: input.customerId, family: input.family as ClientFamily }),
    consents: (patientId) => grants.list(patientId),
    consentGrant: (grant) => grants.grant(grant),
    consentRevoke: async (grant) => (await grants.revoke(grant)).revoked,
  };
}
