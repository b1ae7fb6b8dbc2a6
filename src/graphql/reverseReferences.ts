import { GraphQLEnumType, GraphQLInt, GraphQLList, GraphQLNonNull, GraphQLString, type GraphQLFieldConfig, type GraphQLObjectType } from 'graphql';
import type { GraphqlContext } from './context';
import type { FhirModel } from './fhirModel';
import { prefetchReferences } from './referencePrefetch';
import { argName } from './searchArguments';
import { sliced } from './sliceLabels';

/**
 * Reverse references (graphql.html#reverse): inside a Patient, `ObservationList(_reference: subject)`
 * lists the Observations whose `subject` search parameter points to it. `_reference` is an enum of the
 * source type's reference parameters that can target this type (`Patient_Observation_reference`), so
 * the spec's unquoted form validates and Sandbox offers the choices.
 *
 * Repeating every search argument of the source type here would put megabytes of SDL in the contract;
 * further criteria go in `_query` in URL form instead (e.g. "code=8302-2&status=final").
 */
export function reverseReferenceFields(
  target: string,
  model: FhirModel,
  objectType: (name: string) => GraphQLObjectType,
): Record<string, GraphQLFieldConfig<Record<string, unknown>, GraphqlContext>> {
  const out: Record<string, GraphQLFieldConfig<Record<string, unknown>, GraphqlContext>> = {};
  for (const [source, params] of model.referenceParams) {
    const codes = params.filter((p) => p.targets.includes(target)).map((p) => p.code);
    if (!codes.length) continue;
    const reference = new GraphQLEnumType({
      name: `${target}_${source}_reference`,
      values: Object.fromEntries(codes.map((code) => [argName(code), { value: code }])),
    });
    out[`${source}List`] = {
      type: new GraphQLList(objectType(source)),
      args: {
        _reference: { type: new GraphQLNonNull(reference) },
        // No argument descriptions: printed SDL would spread each of the ~5,500 fields over lines.
        _query: { type: GraphQLString },
        _count: { type: GraphQLInt },
        _offset: { type: GraphQLInt },
        _sort: { type: GraphQLString },
      },
      resolve: async (parent, args: { _reference: string; _query?: string; _count?: number; _offset?: number; _sort?: string }, ctx, info) => {
        const origin = ctx.origin.get(parent) ?? {};
        const found = await ctx.loaders.reverse.load({
          endpoint: origin.endpoint,
          source,
          param: args._reference,
          target: `${target}/${String(parent.id)}`,
          query: args._query ?? undefined,
          sort: args._sort ?? undefined,
          count: args._count ?? undefined,
          offset: args._offset ?? undefined,
        });
        for (const r of found) ctx.origin.set(r, { endpoint: origin.endpoint, resource: r });
        await prefetchReferences(ctx, info, found, origin.endpoint);
        return sliced(ctx, info, found);
      },
    };
  }
  return out;
}
