import { OperationOutcomeError, operationOutcome } from '../fhir/outcome';
import type { GraphqlDataSource } from './dataSource';

/**
 * The run-time half of the GraphQL cost limit. Before execution, limits.ts prices each paged field at the
 * page it asks for (variables included); a List without `_count` is priced at search's default page, yet
 * may return up to LIST_MAX matches, so nested unbounded lists could still fan out far beyond the limit.
 * This wrapper counts the resources the operation actually fetches through the data source (every search
 * match and every reference read) and refuses, with a too-costly OperationOutcome, once they pass the same
 * limit: one request can never make the server fetch more than `maxCost` resources.
 */
export function withCostBudget(source: GraphqlDataSource, maxCost: number): GraphqlDataSource {
  let spent = 0;
  const charge = (n: number): void => {
    spent += n;
    if (spent > maxCost) {
      throw new OperationOutcomeError(
        400,
        operationOutcome([
          {
            severity: 'error',
            code: 'too-costly',
            diagnostics: `The operation fetched more than ${maxCost} resources, over the cost limit: give _count on List fields (they otherwise return up to every match) or page with a Connection`,
          },
        ]),
      );
    }
  };
  return {
    async read(type, id, endpoint) {
      charge(1);
      return source.read(type, id, endpoint);
    },
    async readMany(type, ids, endpoint) {
      charge(ids.length);
      return source.readMany(type, ids, endpoint);
    },
    async search(type, params, endpoint) {
      const bundle = await source.search(type, params, endpoint);
      charge(bundle.entry?.length ?? 0);
      return bundle;
    },
    create: (type, resource, endpoint) => source.create(type, resource, endpoint),
    update: (type, id, resource, endpoint) => source.update(type, id, resource, endpoint),
    delete: (type, id, endpoint) => source.delete(type, id, endpoint),
  };
}
