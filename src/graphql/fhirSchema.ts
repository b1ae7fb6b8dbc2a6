import {
  GraphQLError,
  GraphQLBoolean,
  GraphQLDirective,
  DirectiveLocation,
  GraphQLEnumType,
  GraphQLID,
  GraphQLInputObjectType,
  GraphQLInt,
  GraphQLInterfaceType,
  GraphQLList,
  GraphQLNonNull,
  GraphQLObjectType,
  GraphQLScalarType,
  GraphQLSchema,
  GraphQLString,
  Kind as AstKind,
  specifiedDirectives,
  type GraphQLFieldConfig,
  type GraphQLFieldConfigArgumentMap,
  type GraphQLInputType,
  type GraphQLOutputType,
  type ValueNode,
} from 'graphql';
import { fhirNumber, isFhirDecimal } from '../fhir/losslessJson';
import type { FhirVersion, Resource } from '../fhir/types';
import { buildAggregationSchema } from './aggregationSchema';
import { composeSchema } from './composeSchema';
import { connectionField } from './connection';
import { type GraphqlContext, fromEndpoint, inherit } from './context';
import { elementListArguments, filterElements, type ElementListArgs } from './elementListArguments';
import { fhirModel, type FieldModel } from './fhirModel';
import { listCountParam, listOf } from './listSearch';
import { prefetchReferences } from './referencePrefetch';
import { referenceResourceField } from './referenceResource';
import { buildSubscriptionRoot } from './liveSchema';
import { reverseReferenceFields } from './reverseReferences';
import { sliced } from './sliceLabels';
import { criteriaOf, searchArguments } from './searchArguments';

export type { GraphqlContext } from './context';
export { argName } from './searchArguments';

/**
 * The HL7 FHIR GraphQL interface (R4 graphql.html), generated from the definitions of a FHIR version: an
 * object type (and an input type) per datatype, backbone element and resource; `value[x]` as valueQuantity
 * etc.; `_field` for primitive extensions; `Reference.resource`; `X(id)`, `XList(search…)`,
 * `XConnection(search…)` queries, reverse references `YList(_reference: …)` inside resources;
 * `XCreate/XUpdate/XDelete` mutations. Every resolver delegates to the GraphqlDataSource (through the
 * per-request loaders where it can batch). R4's schema serves /graphql and R4 endpoints; STU3's, the same
 * generator over the STU3 definitions, serves STU3 endpoints' own `$graphql` (stu3Schema.ts).
 */
const JSONScalar = new GraphQLScalarType({
  name: 'JSON',
  description: 'Any JSON value (contained resources in input)',
  serialize: (v) => v,
  parseValue: (v) => v,
  parseLiteral: function parse(ast: ValueNode): unknown {
    switch (ast.kind) {
      case AstKind.STRING:
      case AstKind.BOOLEAN:
        return ast.value;
      case AstKind.INT:
      case AstKind.FLOAT:
        return Number(ast.value);
      case AstKind.OBJECT:
        return Object.fromEntries(ast.fields.map((f) => [f.name.value, parse(f.value)]));
      case AstKind.LIST:
        return ast.values.map(parse);
      default:
        return null;
    }
  },
});

/**
 * FHIR `decimal` (R4 datatypes.html#decimal: its precision is part of its value). In a result it is a JSON
 * number written with the digits it was stored with (`1.50`, not `1.5`: the door serialises results with
 * stringifyFhirJson); as input it accepts a number literal (its digits kept) or a JSON number variable.
 * GraphQL's Float would round every value through a JavaScript number.
 */
export const DecimalScalar = new GraphQLScalarType({
  name: 'Decimal',
  description: 'A FHIR decimal: a JSON number with the exact digits it was sent with (1.50 stays 1.50)',
  serialize: (v) => {
    if (typeof v === 'number' || isFhirDecimal(v)) return v;
    throw new GraphQLError(`Decimal cannot represent ${String(v)}`);
  },
  parseValue: (v) => {
    if ((typeof v === 'number' && Number.isFinite(v)) || isFhirDecimal(v)) return v;
    throw new GraphQLError(`Decimal must be a number, not ${JSON.stringify(v)}`);
  },
  parseLiteral: (ast: ValueNode) => {
    if (ast.kind === AstKind.INT || ast.kind === AstKind.FLOAT) return fhirNumber(ast.value);
    throw new GraphQLError('Decimal must be a number', { nodes: ast });
  },
});

function scalarFor(type: string): GraphQLScalarType {
  switch (type) {
    case 'boolean':
      return GraphQLBoolean;
    case 'integer':
    case 'positiveInt':
    case 'unsignedInt':
      return GraphQLInt;
    case 'decimal':
      return DecimalScalar;
    default:
      return GraphQLString;
  }
}

/** The data re-organisation directives (graphql.html#flattening), applied to results in directives.ts. */
export const DIRECTIVES = [
  new GraphQLDirective({
    name: 'flatten',
    locations: [DirectiveLocation.FIELD, DirectiveLocation.FRAGMENT_SPREAD, DirectiveLocation.INLINE_FRAGMENT],
    description: "Merge the field's content into its parent (graphql.html#directives)",
  }),
  new GraphQLDirective({ name: 'first', locations: [DirectiveLocation.FIELD], description: 'Only the first element of a list' }),
  new GraphQLDirective({
    name: 'singleton',
    locations: [DirectiveLocation.FIELD],
    description: 'Under @flatten: collate to one value, not a list (an error if there are several)',
  }),
  new GraphQLDirective({
    name: 'slice',
    locations: [DirectiveLocation.FIELD],
    args: { path: { type: new GraphQLNonNull(GraphQLString) } },
    description: 'Split a list into fields suffixed with `.` and the value at `path` (`$index`: the position)',
  }),
];

const built = new Map<FhirVersion, GraphQLSchema>();

/** The HL7 FHIR GraphQL schema of a version alone (instance-level $graphql roots come from it). */
export function buildFhirOnlySchema(version: FhirVersion = 'R4'): GraphQLSchema {
  const schema = built.get(version) ?? generate(version);
  built.set(version, schema);
  return schema;
}

const merged = new Map<FhirVersion, GraphQLSchema>();

/**
 * Built once per process and version: the FHIR schema beside our own aggregation and admin types. The
 * subscription root (the aggregated record, R4, over WebSocket at /graphql) is R4's alone.
 */
export function buildFhirSchema(version: FhirVersion = 'R4'): GraphQLSchema {
  const schema = merged.get(version) ?? compose(buildFhirOnlySchema(version), version);
  merged.set(version, schema);
  return schema;
}

function compose(fhir: GraphQLSchema, version: FhirVersion): GraphQLSchema {
  return composeSchema(fhir, buildAggregationSchema(), version === 'R4' ? buildSubscriptionRoot(fhir) : undefined);
}

function generate(version: FhirVersion): GraphQLSchema {
  const model = fhirModel(version);
  // R4's lists also search STU3 endpoints (`_endpoint`), so they take both versions' parameters (searchArguments.ts).
  const searchedVersions = version === 'R4' ? 'any' : version;
  const objects = new Map<string, GraphQLObjectType>();
  const inputs = new Map<string, GraphQLInputObjectType>();
  const objectType = (name: string) => objects.get(name) as GraphQLObjectType;

  const resourceInterface: GraphQLInterfaceType = new GraphQLInterfaceType({
    name: 'Resource',
    fields: () => ({
      id: { type: GraphQLID },
      resourceType: { type: GraphQLString },
      meta: { type: objectType('Meta') },
      implicitRules: { type: GraphQLString },
      language: { type: GraphQLString },
    }),
    resolveType: (value: Resource) => value.resourceType,
  });
  const resourceType = new GraphQLEnumType({
    name: 'ResourceType',
    description: `The FHIR ${version} resource types`,
    values: Object.fromEntries(model.resources.map((r) => [r, { value: r }])),
  });
  const referenceResource = referenceResourceField(resourceInterface, resourceType);

  const outputType = (f: FieldModel): GraphQLOutputType => {
    const base: GraphQLOutputType = f.primitive ? scalarFor(f.type) : f.type === 'Resource' ? resourceInterface : (objects.get(f.type) ?? JSONScalar);
    return f.list ? new GraphQLList(base) : base;
  };

  for (const t of model.types.values()) {
    const isResource = t.kind === 'resource';
    objects.set(
      t.name,
      new GraphQLObjectType<Record<string, unknown>, GraphqlContext>({
        name: t.name,
        interfaces: isResource ? [resourceInterface] : [],
        fields: () => {
          const fields: Record<string, GraphQLFieldConfig<Record<string, unknown>, GraphqlContext>> = {};
          if (isResource) fields.resourceType = { type: GraphQLString };
          for (const f of t.fields) {
            if (f.name === 'id' && isResource) {
              fields.id = { type: GraphQLID };
              continue;
            }
            // Single primitives use graphql-js's default resolver; objects pass on where they came from;
            // repeating elements take the list arguments (elementListArguments.ts).
            const config: GraphQLFieldConfig<Record<string, unknown>, GraphqlContext> = f.list
              ? {
                  type: outputType(f),
                  args: elementListArguments(f.primitive ? undefined : model.types.get(f.type)),
                  extensions: { elementList: true },
                  resolve: (parent, args: ElementListArgs, ctx, info) => sliced(ctx, info, inherit(ctx, filterElements(parent[f.name], args, f, version), parent)),
                }
              : f.primitive
                ? { type: outputType(f) }
                : { type: outputType(f), resolve: (parent, _args, ctx) => inherit(ctx, parent[f.name], parent) };
            fields[f.name] = config;
            if (f.primitive) fields[`_${f.name}`] = { type: f.list ? new GraphQLList(objectType('Element')) : objectType('Element') };
          }
          if (t.name === 'Reference') fields.resource = referenceResource;
          if (isResource) Object.assign(fields, reverseReferenceFields(t.name, model, objectType));
          return fields;
        },
      }),
    );
  }

  for (const t of model.types.values()) {
    inputs.set(
      t.name,
      new GraphQLInputObjectType({
        // A backbone element can itself be called …Input (StructureMap.group.input): keep names unique.
        name: model.types.has(`${t.name}Input`) ? `${t.name}_Input` : `${t.name}Input`,
        fields: () => {
          const fields: Record<string, { type: GraphQLInputType }> = {};
          if (t.kind === 'resource') fields.resourceType = { type: GraphQLString };
          for (const f of t.fields) {
            const base: GraphQLInputType = f.primitive
              ? f.name === 'id' && t.kind === 'resource'
                ? GraphQLID
                : scalarFor(f.type)
              : f.type === 'Resource'
                ? JSONScalar
                : (inputs.get(f.type) ?? JSONScalar);
            fields[f.name] = { type: f.list ? new GraphQLList(base) : base };
            if (f.primitive)
              fields[`_${f.name}`] = { type: f.list ? new GraphQLList(inputs.get('Element') as GraphQLInputObjectType) : (inputs.get('Element') as GraphQLInputObjectType) };
          }
          return fields;
        },
      }),
    );
  }

  const queryFields: Record<string, GraphQLFieldConfig<unknown, GraphqlContext>> = {};
  const mutationFields: Record<string, GraphQLFieldConfig<unknown, GraphqlContext>> = {};
  // R4's types answer any endpoint named by `_endpoint` (an STU3 one in R4's shapes). STU3's serve the STU3
  // endpoint whose own `$graphql` this is and no other, so they take no `_endpoint`: another endpoint's
  // data (or the aggregated record's, R4) would be answered in the wrong version's shapes.
  const endpointArg: GraphQLFieldConfigArgumentMap =
    version === 'R4' ? { _endpoint: { type: GraphQLID, description: 'One of your customer endpoints; omitted: the aggregated record' } } : {};
  // Writes go to a customer endpoint: the argument, or the endpoint whose $graphql this is.
  const writeEndpoint: GraphQLFieldConfigArgumentMap = version === 'R4' ? { _endpoint: { type: GraphQLID, description: 'The customer endpoint to write to' } } : {};
  const writeTarget = (args: { _endpoint?: string }, ctx: GraphqlContext): string => {
    const endpoint = args._endpoint ?? ctx.defaultEndpoint;
    if (!endpoint) throw new GraphQLError('Writes need _endpoint: the aggregated record is read-only', { extensions: { code: 'BAD_USER_INPUT' } });
    return endpoint;
  };

  for (const name of model.resources) {
    const type = objectType(name);
    queryFields[name] = {
      type,
      args: { id: { type: new GraphQLNonNull(GraphQLID) }, ...endpointArg },
      resolve: async (_r, args: { id: string; _endpoint?: string }, ctx) => {
        const endpoint = args._endpoint ?? ctx.defaultEndpoint;
        return fromEndpoint(ctx, await ctx.source.read(name, args.id, endpoint), endpoint);
      },
    };
    queryFields[`${name}List`] = {
      type: new GraphQLList(type),
      args: { ...searchArguments(name, searchedVersions), ...endpointArg },
      resolve: async (_r, args: Record<string, unknown> & { _endpoint?: string; _count?: number; _offset?: number; _cursor?: string }, ctx, info) => {
        const endpoint = args._endpoint ?? ctx.defaultEndpoint;
        // A cursor from a Connection: the List carries on from there (offset cursors of sorted searches too).
        const offsetCursor = args._cursor?.startsWith('offset:') ? Number(args._cursor.slice(7)) : undefined;
        const page = { count: args._count ?? undefined, offset: (args._offset ?? 0) + (offsetCursor ?? 0) || undefined };
        const criteria = criteriaOf(name, args);
        if (args._cursor && offsetCursor === undefined) criteria.push(['_cursor', args._cursor]);
        const bundle = await ctx.source.search(name, [...criteria, ['_count', listCountParam(name, page)]], endpoint);
        const list = listOf(name, bundle, page).map((r) => fromEndpoint(ctx, r, endpoint));
        await prefetchReferences(ctx, info, list, endpoint);
        return sliced(ctx, info, list);
      },
    };
    queryFields[`${name}Connection`] = connectionField(name, type, { ...searchArguments(name, searchedVersions), ...endpointArg });

    // graphql.html#mutations: `PatientCreate(res: …)`, `PatientUpdate(id: …, res: …)`, `PatientDelete(id: …)`.
    const input = inputs.get(name) as GraphQLInputObjectType;
    mutationFields[`${name}Create`] = {
      type,
      args: { res: { type: new GraphQLNonNull(input) }, ...writeEndpoint },
      resolve: async (_r, args: { res: Resource; _endpoint?: string }, ctx) => {
        const endpoint = writeTarget(args, ctx);
        return fromEndpoint(ctx, await ctx.source.create(name, { ...args.res, resourceType: name }, endpoint), endpoint);
      },
    };
    mutationFields[`${name}Update`] = {
      type,
      args: { id: { type: new GraphQLNonNull(GraphQLID) }, res: { type: new GraphQLNonNull(input) }, ...writeEndpoint },
      resolve: async (_r, args: { id: string; res: Resource; _endpoint?: string }, ctx) => {
        const endpoint = writeTarget(args, ctx);
        return fromEndpoint(ctx, await ctx.source.update(name, args.id, { ...args.res, resourceType: name, id: args.id }, endpoint), endpoint);
      },
    };
    mutationFields[`${name}Delete`] = {
      type: objectType('OperationOutcome'),
      args: { id: { type: new GraphQLNonNull(GraphQLID) }, ...writeEndpoint },
      resolve: async (_r, args: { id: string; _endpoint?: string }, ctx) => {
        await ctx.source.delete(name, args.id, writeTarget(args, ctx));
        return { resourceType: 'OperationOutcome', issue: [{ severity: 'information', code: 'informational', diagnostics: `Deleted ${name}/${args.id}` }] };
      },
    };
  }

  return new GraphQLSchema({
    query: new GraphQLObjectType({ name: 'Query', fields: queryFields }),
    mutation: new GraphQLObjectType({ name: 'Mutation', fields: mutationFields }),
    types: [...objects.values()],
    directives: [...DIRECTIVES, ...specifiedDirectives],
  });
}
