import { notFound } from '../fhir/outcome';
import type { Bundle, Resource } from '../fhir/types';
import type { FhirService } from '../service/fhirService';
import type { GraphqlDataSource } from './dataSource';

/**
 * The GraphQL data source over the same services the REST door uses, so access rules are exactly REST's:
 * `customer(id)` resolves (and checks ownership of) one of the caller's endpoints; `aggregated()` is the
 * aggregated record under the caller's access filter. Both come from the authorisation point
 * (service/authorization.ts), whose services check the caller's scopes on every call.
 */
export interface CallerServices {
  customer(endpointId: string): Promise<{ service: FhirService; baseUrl: string }>;
  aggregated(): Promise<{ service: FhirService; baseUrl: string; supported: ReadonlySet<string> }>;
}

const emptySearchset = (): Bundle => ({ resourceType: 'Bundle', type: 'searchset', total: 0, entry: [] });

export function serviceSource(services: CallerServices): GraphqlDataSource {
  return {
    async read(type, id, endpoint) {
      if (endpoint) return (await (await services.customer(endpoint)).service.read(type, id)).resource as Resource;
      const agg = await services.aggregated();
      if (!agg.supported.has(type)) throw notFound(`${type} is not part of the aggregated record`);
      return (await agg.service.read(type, id)).resource as Resource;
    },
    async readMany(type, ids, endpoint) {
      if (endpoint) {
        const c = await services.customer(endpoint);
        return c.service.readMany(type, ids, c.baseUrl);
      }
      const agg = await services.aggregated();
      if (!agg.supported.has(type)) return [];
      return agg.service.readMany(type, ids, agg.baseUrl);
    },
    async search(type, params, endpoint) {
      if (endpoint) {
        const c = await services.customer(endpoint);
        return c.service.search(type, params, { baseUrl: c.baseUrl, handling: 'strict' });
      }
      const agg = await services.aggregated();
      if (!agg.supported.has(type)) return emptySearchset();
      return agg.service.search(type, params, { baseUrl: agg.baseUrl, handling: 'strict' });
    },
    async create(type, resource, endpoint) {
      return (await (await services.customer(endpoint)).service.create(type, resource)).stored.resource as Resource;
    },
    async update(type, id, resource, endpoint) {
      return (await (await services.customer(endpoint)).service.update(type, id, resource)).stored.resource as Resource;
    },
    async delete(type, id, endpoint) {
      await (await services.customer(endpoint)).service.delete(type, id);
    },
  };
}
