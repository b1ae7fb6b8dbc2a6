import { GraphQLObjectType, GraphQLSchema } from 'graphql';
import { buildFhirSchema } from './fhirSchema';
import { fhirModel } from './fhirModel';
import { searchArguments } from './searchArguments';

/**
 * The schema of an STU3 customer endpoint's own `$graphql` (system level): /graphql's schema with a
 * Query root whose `XList` and `XConnection` take the STU3 (3.0.2) search parameters alone, so
 * `ConditionList(asserted_date: …)` validates there and an R4-only argument (`recorded_date`) is refused
 * before anything runs, naming the argument and the field.
 *
 * Every other type (resources, datatypes, connections, mutations, aggregation views) is /graphql's own
 * instance: a second schema built from the definitions would cost as much heap again (tens of MB) for a
 * few hundred argument lists. Built on the first STU3 `$graphql`, then kept. Reverse references inside
 * resources take both versions' `_reference` values; search refuses those the endpoint's version lacks.
 */
let built: GraphQLSchema | undefined;

export function buildStu3Schema(): GraphQLSchema {
  if (built) return built;
  const full = buildFhirSchema();
  const query = full.getQueryType() as GraphQLObjectType;
  const config = query.toConfig();
  for (const type of fhirModel().resources) {
    for (const name of [`${type}List`, `${type}Connection`]) {
      const field = config.fields[name];
      if (!field) continue;
      // Search parameters are replaced; what is no search parameter (`_endpoint`) is kept.
      const endpoint = field.args?._endpoint;
      config.fields[name] = { ...field, args: { ...searchArguments(type, 'STU3'), ...(endpoint ? { _endpoint: endpoint } : {}) } };
    }
  }
  const stu3Query = new GraphQLObjectType(config);
  const schema = full.toConfig();
  built = new GraphQLSchema({ ...schema, query: stu3Query, types: schema.types.map((t) => (t === query ? stu3Query : t)) });
  return built;
}
