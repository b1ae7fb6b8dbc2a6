import { notFound } from '../fhir/outcome';
import * as fhir from './interactions';
import type { EndpointContext } from './interactions';
import { RouteTable } from './routeTable';

/**
 * Customer endpoints support every REST interaction (http.html#summary), batch and transaction Bundles
 * POSTed to the root included.
 */
export function customerRoutes(): RouteTable<EndpointContext> {
  return new RouteTable<EndpointContext>()
    .add('GET', 'metadata', fhir.metadata)
    .add('GET', '', fhir.search)
    .add('POST', '_search', fhir.searchPost)
    .add('GET', '_history', fhir.history)
    .add('POST', '', fhir.transaction)
    .add('GET', ':type', fhir.search)
    .add('POST', ':type', fhir.create)
    .add('PUT', ':type', fhir.conditionalUpdate)
    .add('DELETE', ':type', fhir.conditionalDelete)
    .add('POST', ':type/_search', fhir.searchPost)
    .add('GET', ':type/_history', fhir.history)
    .add('GET', ':type/:id', fhir.read)
    .add('PUT', ':type/:id', fhir.update)
    .add('PATCH', ':type/:id', fhir.patch)
    .add('DELETE', ':type/:id', fhir.remove)
    .add('GET', ':type/:id/_history', fhir.history)
    .add('GET', ':type/:id/_history/:vid', fhir.vread)
    .add('GET', ':type/:id/$op', async (req, p, ctx) => {
      if (p.op !== 'aggregation-status') throw notFound(`Operation $${p.op} is not known here`);
      return fhir.aggregationStatus(req, p, ctx);
    });
}
