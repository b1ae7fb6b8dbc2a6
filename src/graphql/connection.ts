import { GraphQLFloat, GraphQLInt, GraphQLList, GraphQLObjectType, GraphQLString, type GraphQLFieldConfig } from 'graphql';
import type { Bundle } from '../fhir/types';
import { type GraphqlContext, fromEndpoint } from './context';
import { prefetchReferences } from './referencePrefetch';
import { criteriaOf } from './searchArguments';

/**
 * `XConnection` (graphql.html#searching): one page of a search with its total `count`, the `first`,
 * `previous`, `next` and `last` cursors to pass back as `_cursor`, and `edges { mode score resource }`.
 * Cursors are search's own keyset cursors; a sorted search pages by offset (`offset:40`).
 */
function cursorOf(bundle: Bundle, relation: string): string | undefined {
  const url = bundle.link?.find((l) => l.relation === relation)?.url;
  if (!url) return undefined;
  const q = new URL(url).searchParams;
  return q.get('_cursor') ?? (q.get('_offset') !== null ? `offset:${q.get('_offset')}` : undefined);
}

function pagingParams(args: { _count?: number; _offset?: number; _cursor?: string }): [string, string][] {
  const params: [string, string][] = [];
  if (args._count != null) params.push(['_count', String(args._count)]);
  if (args._cursor != null) params.push(args._cursor.startsWith('offset:') ? ['_offset', args._cursor.slice(7)] : ['_cursor', args._cursor]);
  else if (args._offset != null) params.push(['_offset', String(args._offset)]);
  return params;
}

export function connectionField(
  name: string,
  type: GraphQLObjectType,
  /** The search arguments (of the schema's version) and `_endpoint`. */
  args: GraphQLFieldConfig<unknown, GraphqlContext>['args'],
): GraphQLFieldConfig<unknown, GraphqlContext> {
  const edge = new GraphQLObjectType({ name: `${name}Edge`, fields: { mode: { type: GraphQLString }, score: { type: GraphQLFloat }, resource: { type } } });
  const connection = new GraphQLObjectType({
    name: `${name}Connection`,
    fields: {
      count: { type: GraphQLInt },
      offset: { type: GraphQLInt },
      pagesize: { type: GraphQLInt },
      first: { type: GraphQLString },
      previous: { type: GraphQLString },
      next: { type: GraphQLString },
      last: { type: GraphQLString },
      edges: { type: new GraphQLList(edge) },
    },
  });
  return {
    type: connection,
    args,
    resolve: async (_r, args: Record<string, unknown> & { _endpoint?: string; _count?: number; _offset?: number; _cursor?: string }, ctx, info) => {
      const endpoint = args._endpoint ?? ctx.defaultEndpoint;
      const params = [...criteriaOf(name, args), ...pagingParams(args)];
      if (!params.some(([k]) => k === '_total')) params.push(['_total', 'accurate']);
      const bundle = await ctx.source.search(name, params, endpoint);
      const entries = (bundle.entry ?? []).filter((e) => e.resource && e.search?.mode !== 'outcome');
      for (const e of entries) fromEndpoint(ctx, e.resource, endpoint);
      const offset = args._cursor?.startsWith('offset:') ? Number(args._cursor.slice(7)) : (args._offset ?? 0);
      const page = {
        count: bundle.total,
        offset,
        pagesize: entries.filter((e) => e.search?.mode === 'match').length,
        first: cursorOf(bundle, 'first'),
        previous: cursorOf(bundle, 'previous'),
        next: cursorOf(bundle, 'next'),
        last: cursorOf(bundle, 'last'),
        edges: entries.map((e) => ({ mode: e.search?.mode, score: e.search?.score, resource: e.resource })),
      };
      await prefetchReferences(ctx, info, page, endpoint);
      return page;
    },
  };
}
