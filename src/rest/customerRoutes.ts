import { notFound } from '../fhir/outcome';
import * as fhir from './interactions';
import type { EndpointContext } from './interactions';
import { type RouteHandler, RouteTable } from './routeTable';

/**
 * Customer endpoints support every REST interaction (http.html#summary), batch and transaction Bundles
 * POSTed to the root included.
 */
/** Dispatches `$name` to its handler; unknown operations are 404. */
export function operations<C>(handlers: Record<string, RouteHandler<C>>): RouteHandler<C> {
  return async (req, p, ctx) => {
    const handler = handlers[p.op];
    if (!handler) throw notFound(`Operation $${p.op} is not known here`);
    return handler(req, p, ctx);
  };
}

export function customerRoutes(): RouteTable<EndpointContext> {
  return new RouteTable<EndpointContext>()
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
    .add('GET', '$op', operations({ graphql: fhir.graphqlOperation, 'aggregation-report': fhir.aggregationReport }))
    .add('POST', '$op', operations({ graphql: fhir.graphqlOperation }))
    .add('GET', ':type/:id/$op', operations({ 'aggregation-status': fhir.aggregationStatus, graphql: fhir.graphqlOperation }))
    .add('POST', ':type/:id/$op', operations({ graphql: fhir.graphqlOperation }));
}
