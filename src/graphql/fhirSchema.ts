import {
  GraphQLError, GraphQLBoolean, GraphQLDirective, DirectiveLocation, GraphQLFloat, GraphQLID, GraphQLInputObjectType, GraphQLInt, GraphQLInterfaceType,
  GraphQLList, GraphQLNonNull, GraphQLObjectType, GraphQLScalarType, GraphQLSchema, GraphQLString, Kind as AstKind,
  type GraphQLFieldConfig, type GraphQLFieldConfigArgumentMap, type GraphQLInputType, type GraphQLOutputType, type ValueNode,
} from 'graphql';
import { searchParameterMap } from '../fhir/searchParameters';
import type { Bundle, Resource } from '../fhir/types';
import { mergeSchemas } from '@graphql-tools/schema';
import { type AdminOps, type AggregationOps, buildAggregationSchema } from './aggregationSchema';
import type { GraphqlDataSource } from './dataSource';
import { fhirModel, type FieldModel, type TypeModel } from './fhirModel';
import { type Loaders, referenceKey } from './loaders';

/**
 * The HL7 FHIR GraphQL interface (R4 graphql.html), generated from the definitions: an object type (and an
 * input type) per datatype, backbone element and resource; `value[x]` as valueQuantity etc.; `_field` for
 * primitive extensions; Reference.resource; `X(id)`, `XList(search…)`, `XConnection(search…)` queries,
 * reverse references `YList(_reference: …)` inside resources; `XCreate/XUpdate/XDelete` mutations. Every
 * resolver delegates to the GraphqlDataSource.
 */
export interface GraphqlContext {
  source: GraphqlDataSource;
  loaders: Loaders;
  /** The endpoint each returned resource came from (undefined: aggregated), for following its references. */
  origin: WeakMap<object, string | undefined>;
  /** Where `_endpoint`-less fields go: a customer endpoint's own `$graphql`, else the aggregated record. */
  defaultEndpoint?: string;
  /** Aggregation views (FHIR callers) and admin operations (admin caller), see aggregationSchema.ts. */
  aggregation?: AggregationOps;
  admin?: AdminOps;
}

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

function scalarFor(type: string): GraphQLScalarType {
  switch (type) {
    case 'boolean':
      return GraphQLBoolean;
    case 'integer':
    case 'positiveInt':
    case 'unsignedInt':
      return GraphQLInt;
    case 'decimal':
      return GraphQLFloat;
    default:
      return GraphQLString;
  }
}

/** FHIR search parameter codes as GraphQL argument names (`birth-date` → `birth_date`). */
export const argName = (code: string) => code.replace(/-/g, '_');
const PAGING_ARGS = ['_count', '_offset', '_cursor', '_sort'];

export const DIRECTIVES = [
  new GraphQLDirective({ name: 'flatten', locations: [DirectiveLocation.FIELD, DirectiveLocation.FRAGMENT_SPREAD, DirectiveLocation.INLINE_FRAGMENT], description: "Merge the field's content into its parent (graphql.html#directives)" }),
  new GraphQLDirective({ name: 'first', locations: [DirectiveLocation.FIELD], description: 'Only the first element of a list' }),
  new GraphQLDirective({ name: 'singleton', locations: [DirectiveLocation.FIELD], description: 'A list known to hold one element, as that element' }),
  new GraphQLDirective({
    name: 'slice',
    locations: [DirectiveLocation.FIELD],
    args: { path: { type: new GraphQLNonNull(GraphQLString) } },
    description: 'Split a list into fields named by the value at `path` (use with @flatten)',
  }),
];

function bundleEntries(bundle: Bundle, origin: WeakMap<object, string | undefined>, endpoint: string | undefined, mode = 'match'): Resource[] {
  return (bundle.entry ?? []).filter((e) => e.search?.mode === mode && e.resource).map((e) => {
    origin.set(e.resource as object, endpoint);
    return e.resource as Resource;
  });
}

function cursorOf(bundle: Bundle, relation: string): string | undefined {
  const url = bundle.link?.find((l) => l.relation === relation)?.url;
  if (!url) return undefined;
  const q = new URL(url).searchParams;
  return q.get('_cursor') ?? (q.get('_offset') !== null ? `offset:${q.get('_offset')}` : undefined);
}

let built: GraphQLSchema | undefined;

/** The HL7 FHIR GraphQL schema alone (instance-level $graphql roots come from it). */
export function buildFhirOnlySchema(): GraphQLSchema {
  built ??= generate();
  return built;
}

let merged: GraphQLSchema | undefined;

/** Built once per process: the FHIR schema merged with our own aggregation and admin types. */
export function buildFhirSchema(): GraphQLSchema {
  merged ??= mergeSchemas({ schemas: [buildFhirOnlySchema(), buildAggregationSchema()] });
  return merged;
}

function generate(): GraphQLSchema {
  const model = fhirModel();
  const objects = new Map<string, GraphQLObjectType>();
  const inputs = new Map<string, GraphQLInputObjectType>();
  const resourceSet = new Set(model.resources);
  const searchArgs = new Map<string, Map<string, string>>();

  const argsFor = (type: string): Map<string, string> => {
    let map = searchArgs.get(type);
    if (!map) {
      map = new Map();
      for (const code of searchParameterMap(type).keys()) map.set(argName(code), code);
      searchArgs.set(type, map);
    }
    return map;
  };
  const searchArgConfig = (type: string): GraphQLFieldConfigArgumentMap => {
    const out: GraphQLFieldConfigArgumentMap = {};
    for (const name of argsFor(type).keys()) out[name] = { type: GraphQLString };
    out._count = { type: GraphQLInt };
    out._offset = { type: GraphQLInt };
    out._cursor = { type: GraphQLString };
    out._sort = { type: GraphQLString };
    return out;
  };
  const toParams = (type: string, args: Record<string, unknown>): [string, string][] => {
    const map = argsFor(type);
    const params: [string, string][] = [];
    for (const [k, v] of Object.entries(args)) {
      if (v === undefined || v === null || k === '_endpoint' || k === '_reference') continue;
      if (k === '_cursor') {
        const s = String(v);
        params.push(s.startsWith('offset:') ? ['_offset', s.slice(7)] : ['_cursor', s]);
      } else if (PAGING_ARGS.includes(k)) params.push([k, String(v)]);
      else params.push([map.get(k) ?? k, String(v)]);
    }
    return params;
  };

  const ElementBase = () => objects.get('Element') as GraphQLObjectType;
  const resourceInterface: GraphQLInterfaceType = new GraphQLInterfaceType({
    name: 'Resource',
    fields: () => ({ id: { type: GraphQLID }, resourceType: { type: GraphQLString }, meta: { type: objects.get('Meta') as GraphQLObjectType }, implicitRules: { type: GraphQLString }, language: { type: GraphQLString } }),
    resolveType: (value: Resource) => value.resourceType,
  });

  const outputType = (f: FieldModel): GraphQLOutputType => {
    const base: GraphQLOutputType = f.primitive ? scalarFor(f.type) : f.type === 'Resource' ? resourceInterface : (objects.get(f.type) ?? JSONScalar);
    return f.list ? new GraphQLList(base) : base;
  };

  const referenceResource: GraphQLFieldConfig<Record<string, unknown>, GraphqlContext> = {
    type: resourceInterface,
    args: { type: { type: GraphQLString, description: 'Only follow references to this resource type' }, optional: { type: GraphQLBoolean } },
    resolve: async (ref, args: { type?: string }, ctx) => {
      const m = /^([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})$/.exec(String(ref.reference ?? ''));
      if (!m || (args.type && args.type !== m[1]) || !resourceSet.has(m[1])) return null;
      const endpoint = ctx.origin.get(ref) ?? undefined;
      const found = await ctx.loaders.byId.load(referenceKey(endpoint, m[1], m[2]));
      if (found) ctx.origin.set(found, endpoint);
      return found;
    },
  };

  /** Nested objects inherit the endpoint of the resource they sit in, so their references resolve there. */
  const propagate = (value: unknown, endpoint: string | undefined, ctx: GraphqlContext) => {
    if (Array.isArray(value)) {
      for (const v of value) if (v && typeof v === 'object') ctx.origin.set(v, endpoint);
    } else if (value && typeof value === 'object') {
      ctx.origin.set(value, endpoint);
    }
    return value;
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
            // Primitives use graphql-js's default resolver; objects pass on the endpoint they came from.
            const config: GraphQLFieldConfig<Record<string, unknown>, GraphqlContext> = f.primitive
              ? { type: outputType(f) }
              : { type: outputType(f), resolve: (parent, _args, ctx) => propagate(parent[f.name], ctx.origin.get(parent), ctx) };
            if (f.name === 'extension' || f.name === 'modifierExtension') {
              config.args = { url: { type: GraphQLString } };
              config.resolve = (parent, args: { url?: string }, ctx) => {
                const list = (parent[f.name] as { url: string }[] | undefined) ?? [];
                return propagate(args.url ? list.filter((e) => e.url === args.url) : list, ctx.origin.get(parent), ctx);
              };
            }
            fields[f.name] = config;
            if (f.primitive) fields[`_${f.name}`] = { type: f.list ? new GraphQLList(ElementBase()) : ElementBase() };
          }
          if (t.name === 'Reference') fields.resource = referenceResource;
          if (isResource) Object.assign(fields, reverseFields(t));
          return fields;
        },
      }),
    );
  }

  /** `ObservationList(_reference: patient, …)` inside a Patient: resources of other types referring to it. */
  function reverseFields(target: TypeModel): Record<string, GraphQLFieldConfig<Record<string, unknown>, GraphqlContext>> {
    const out: Record<string, GraphQLFieldConfig<Record<string, unknown>, GraphqlContext>> = {};
    for (const [source, params] of model.referenceParams) {
      const codes = params.filter((p) => p.targets.includes(target.name)).map((p) => p.code);
      if (!codes.length) continue;
      out[`${source}List`] = {
        type: new GraphQLList(objects.get(source) as GraphQLObjectType),
        // Search arguments here would repeat every type's parameters in every resource (megabytes of SDL);
        // `_query` takes further criteria in URL form instead (e.g. "code=1234-5&status=final").
        args: {
          _reference: { type: new GraphQLNonNull(GraphQLString) },
          _query: { type: GraphQLString },
          _count: { type: GraphQLInt },
          _offset: { type: GraphQLInt },
          _sort: { type: GraphQLString },
        },
        resolve: async (parent, args: Record<string, unknown>, ctx) => {
          const endpoint = ctx.origin.get(parent);
          const reference = argsFor(source).get(String(args._reference)) ?? String(args._reference);
          const extra = args._query ? [...new URLSearchParams(String(args._query)).entries()] : [];
          const { _query: _q, ...rest } = args;
          const bundle = await ctx.source.search(source, [[reference, `${target.name}/${parent.id}`], ...extra, ...toParams(source, rest)], endpoint);
          return bundleEntries(bundle, ctx.origin, endpoint);
        },
      };
    }
    return out;
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
            const base: GraphQLInputType = f.primitive ? (f.name === 'id' && t.kind === 'resource' ? GraphQLID : scalarFor(f.type)) : f.type === 'Resource' ? JSONScalar : (inputs.get(f.type) ?? JSONScalar);
            fields[f.name] = { type: f.list ? new GraphQLList(base) : base };
            if (f.primitive) fields[`_${f.name}`] = { type: f.list ? new GraphQLList(inputs.get('Element') as GraphQLInputObjectType) : (inputs.get('Element') as GraphQLInputObjectType) };
          }
          return fields;
        },
      }),
    );
  }

  const queryFields: Record<string, GraphQLFieldConfig<unknown, GraphqlContext>> = {};
  const mutationFields: Record<string, GraphQLFieldConfig<unknown, GraphqlContext>> = {};
  const endpointArg = { _endpoint: { type: GraphQLID, description: 'One of your customer endpoints; omitted: the aggregated record' } };
  for (const name of model.resources) {
    const type = objects.get(name) as GraphQLObjectType;
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
    queryFields[name] = {
      type,
      args: { id: { type: new GraphQLNonNull(GraphQLID) }, ...endpointArg },
      resolve: async (_r, args: { id: string; _endpoint?: string }, ctx) => {
        const endpoint = args._endpoint ?? ctx.defaultEndpoint;
        const resource = await ctx.source.read(name, args.id, endpoint);
        ctx.origin.set(resource, endpoint);
        return resource;
      },
    };
    queryFields[`${name}List`] = {
      type: new GraphQLList(type),
      args: { ...searchArgConfig(name), ...endpointArg },
      resolve: async (_r, args: Record<string, unknown>, ctx) => {
        const endpoint = (args._endpoint as string | undefined) ?? ctx.defaultEndpoint;
        return bundleEntries(await ctx.source.search(name, toParams(name, args), endpoint), ctx.origin, endpoint);
      },
    };
    queryFields[`${name}Connection`] = {
      type: connection,
      args: { ...searchArgConfig(name), ...endpointArg },
      resolve: async (_r, args: Record<string, unknown>, ctx) => {
        const endpoint = (args._endpoint as string | undefined) ?? ctx.defaultEndpoint;
        const params = toParams(name, args);
        if (!params.some(([k]) => k === '_total')) params.push(['_total', 'accurate']);
        const bundle = await ctx.source.search(name, params, endpoint);
        const entries = (bundle.entry ?? []).filter((e) => e.resource && e.search?.mode !== 'outcome');
        for (const e of entries) ctx.origin.set(e.resource as object, endpoint);
        return {
          count: bundle.total,
          offset: args._offset ?? 0,
          pagesize: entries.filter((e) => e.search?.mode === 'match').length,
          first: cursorOf(bundle, 'first'),
          previous: cursorOf(bundle, 'previous'),
          next: cursorOf(bundle, 'next'),
          last: cursorOf(bundle, 'last'),
          edges: entries.map((e) => ({ mode: e.search?.mode, score: e.search?.score, resource: e.resource })),
        };
      },
    };
    const input = inputs.get(name) as GraphQLInputObjectType;
    // Writes go to a customer endpoint: the argument, or the endpoint whose $graphql this is.
    const writeEndpoint = { _endpoint: { type: GraphQLID, description: 'The customer endpoint to write to' } };
    const target = (args: { _endpoint?: string }, ctx: GraphqlContext): string => {
      const endpoint = args._endpoint ?? ctx.defaultEndpoint;
      if (!endpoint) throw new GraphQLError('Writes need _endpoint: the aggregated record is read-only', { extensions: { code: 'BAD_USER_INPUT' } });
      return endpoint;
    };
    mutationFields[`${name}Create`] = {
      type,
      args: { resource: { type: new GraphQLNonNull(input) }, ...writeEndpoint },
      resolve: (_r, args: { resource: Resource; _endpoint?: string }, ctx) => ctx.source.create(name, { ...args.resource, resourceType: name }, target(args, ctx)),
    };
    mutationFields[`${name}Update`] = {
      type,
      args: { id: { type: new GraphQLNonNull(GraphQLID) }, resource: { type: new GraphQLNonNull(input) }, ...writeEndpoint },
      resolve: (_r, args: { id: string; resource: Resource; _endpoint?: string }, ctx) => ctx.source.update(name, args.id, { ...args.resource, resourceType: name, id: args.id }, target(args, ctx)),
    };
    mutationFields[`${name}Delete`] = {
      type: objects.get('OperationOutcome') as GraphQLObjectType,
      args: { id: { type: new GraphQLNonNull(GraphQLID) }, ...writeEndpoint },
      resolve: async (_r, args: { id: string; _endpoint?: string }, ctx) => {
        await ctx.source.delete(name, args.id, target(args, ctx));
        return { resourceType: 'OperationOutcome', issue: [{ severity: 'information', code: 'informational', diagnostics: `Deleted ${name}/${args.id}` }] };
      },
    };
  }

  return new GraphQLSchema({
    query: new GraphQLObjectType({ name: 'Query', fields: queryFields }),
    mutation: new GraphQLObjectType({ name: 'Mutation', fields: mutationFields }),
    types: [...objects.values()],
    directives: [...DIRECTIVES, ...new GraphQLSchema({}).getDirectives()],
  });
}
