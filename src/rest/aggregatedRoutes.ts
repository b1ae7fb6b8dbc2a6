import { notFound } from '../fhir/outcome';
import type { Bundle } from '../fhir/types';
import { ok } from './fhirHttp';
import * as fhir from './interactions';
import type { EndpointContext } from './interactions';
import { operations } from './customerRoutes';
import { RouteTable, type RouteHandler } from './routeTable';
import { everything } from './everything';
import { exportKickOff } from './exportKickOff';
import type { BulkExport } from '../service/bulkExport';

/**
 * The aggregated endpoint: read-only R4 (DESIGN §1). Every write shape answers 405 from the route table;
 * types the aggregation does not support search as an empty searchset and read as missing.
 */
export interface AggregatedContext extends EndpointContext {
  supported: ReadonlySet<string>;
  /** Bulk Data export (`$export`). */
  bulk?: BulkExport;
}

const searchSupported =
  (handler: RouteHandler<EndpointContext>): RouteHandler<AggregatedContext> =>
  async (req, p, ctx) => {
    if (!ctx.supported.has(p.type)) {
      const empty: Bundle = { resourceType: 'Bundle', type: 'searchset', total: 0, link: [{ relation: 'self', url: `${ctx.baseUrl}/${p.type}` }], entry: [] };
      return ok(empty);
    }
    return handler(req, p, ctx);
  };

const readSupported =
  (handler: RouteHandler<AggregatedContext>): RouteHandler<AggregatedContext> =>
  async (req, p, ctx) => {
    if (!ctx.supported.has(p.type)) throw notFound(`${p.type} is not part of the aggregated record`);
    return handler(req, p, ctx);
  };

export function aggregatedRoutes(): RouteTable<AggregatedContext> {
  return new RouteTable<AggregatedContext>()
    .add('GET', '_history', fhir.history)
    .add('GET', ':type', searchSupported(fhir.search))
    .add('POST', ':type/_search', searchSupported(fhir.searchPost))
    .add('GET', ':type/_history', readSupported(fhir.history))
    .add('GET', ':type/:id', readSupported(fhir.read))
    .add('GET', ':type/:id/_history', readSupported(fhir.history))
    .add('GET', ':type/:id/_history/:vid', readSupported(fhir.vread))
    .add('GET', '', fhir.search)
    .add('GET', '$op', operations<AggregatedContext>({ graphql: fhir.graphqlOperation, export: exportKickOff }))
    .add('GET', ':type/$op', readSupported(operations<AggregatedContext>({ export: exportKickOff })))
    .add('POST', '$op', operations<AggregatedContext>({ graphql: fhir.graphqlOperation, export: exportKickOff }))
    .add('POST', ':type/$op', readSupported(operations<AggregatedContext>({ export: exportKickOff })))
    .add('GET', ':type/:id/$op', readSupported(operations<AggregatedContext>({ graphql: fhir.graphqlOperation, everything, export: exportKickOff })))
    .add('POST', ':type/:id/$op', readSupported(operations<AggregatedContext>({ graphql: fhir.graphqlOperation, export: exportKickOff })));
}
