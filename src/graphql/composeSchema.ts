import { GraphQLObjectType, GraphQLSchema, isIntrospectionType, isSpecifiedDirective, isSpecifiedScalarType, type GraphQLNamedType } from 'graphql';

/**
 * Puts our own type-graphql types beside the generated FHIR types in one schema: the root fields of both
 * are joined, every other type is kept as built (with its resolvers).
 *
 * Why not `mergeSchemas` from @graphql-tools: it prints and re-parses the ~1,600 FHIR types (≈1.8 s at
 * every start), and it silently merges same-named types. FHIR R4 owns many names (`Endpoint`, `Group`,
 * `Account`…), so a clash here is an error, not a merge.
 */
function ownTypes(schema: GraphQLSchema): GraphQLNamedType[] {
  // Roots by identity, not by name: `Subscription` is also a FHIR resource.
  const roots = new Set<GraphQLNamedType | null | undefined>([schema.getQueryType(), schema.getMutationType(), schema.getSubscriptionType()]);
  return Object.values(schema.getTypeMap()).filter((t) => !isIntrospectionType(t) && !isSpecifiedScalarType(t) && !roots.has(t));
}

function joinRoot(name: string, parts: (GraphQLObjectType | null | undefined)[]): GraphQLObjectType | undefined {
  const present = parts.filter((p): p is GraphQLObjectType => !!p);
  if (!present.length) return undefined;
  const fields: ReturnType<GraphQLObjectType['toConfig']>['fields'] = {};
  for (const part of present) {
    for (const [field, config] of Object.entries(part.toConfig().fields)) {
      if (field in fields) throw new Error(`GraphQL schemas both define ${name}.${field}`);
      fields[field] = config;
    }
  }
  return new GraphQLObjectType({ name, fields });
}

export function composeSchema(fhir: GraphQLSchema, own: GraphQLSchema, subscription?: GraphQLObjectType): GraphQLSchema {
  const taken = new Set(ownTypes(fhir).map((t) => t.name));
  const clashes = ownTypes(own)
    .filter((t) => taken.has(t.name))
    .map((t) => t.name);
  if (clashes.length) throw new Error(`GraphQL type names already used by the FHIR schema: ${clashes.join(', ')}`);
  const query = joinRoot('Query', [fhir.getQueryType(), own.getQueryType()]);
  const mutation = joinRoot('Mutation', [fhir.getMutationType(), own.getMutationType()]);
  return new GraphQLSchema({
    query,
    mutation,
    subscription,
    // Roots first, so the emitted SDL opens with the operations.
    types: [query, mutation, subscription, ...ownTypes(fhir), ...ownTypes(own)].filter((t): t is GraphQLNamedType => !!t),
    directives: [...fhir.getDirectives(), ...own.getDirectives().filter((d) => !isSpecifiedDirective(d))],
  });
}
