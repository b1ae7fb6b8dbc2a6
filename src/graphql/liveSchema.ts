import { GraphQLEnumType, GraphQLID, GraphQLInterfaceType, GraphQLNonNull, GraphQLObjectType, GraphQLString, type GraphQLSchema } from 'graphql';
import { badRequest } from '../fhir/outcome';
import type { RecordChange } from '../live/liveRecord';
import { fromEndpoint, type GraphqlContext } from './context';

/**
 * The subscription root (issue 18): the aggregated record, live, over graphql-ws at /graphql. Named
 * `RecordSubscription` because `Subscription` is a FHIR resource type. Resolvers only hand the request
 * to the live record the context carries (src/live/liveRecord.ts), which checks access for every event.
 */
export interface LiveOps {
  patientRecordChanged(patient: string, since?: string | null): Promise<AsyncIterable<RecordChange>>;
  resourceChanged(type: string, criteria: [string, string][], since?: string | null): Promise<AsyncIterable<RecordChange>>;
}

const live = (ctx: GraphqlContext): LiveOps => {
  if (!ctx.live) throw badRequest('Subscriptions run over WebSocket (the graphql-ws protocol) at /graphql, with a token from /oauth2/token');
  return ctx.live;
};

/** `code=http://loinc.org|1234-5&date=ge2020` → search parameters; the search itself checks names and values. */
export function parseCriteria(criteria: string | null | undefined): [string, string][] {
  if (!criteria) return [];
  const params = [...new URLSearchParams(criteria.replace(/^\?/, ''))];
  for (const [name] of params)
    if (['_count', '_offset', '_sort', '_include', '_revinclude', '_summary', '_elements', '_total'].includes(name))
      throw badRequest(`'${name}' does not narrow which changes are sent; leave it out of the criteria`, 'criteria');
  return params;
}

export function buildSubscriptionRoot(fhir: GraphQLSchema): GraphQLObjectType {
  const resource = fhir.getType('Resource') as GraphQLInterfaceType;
  const changeKind = new GraphQLEnumType({
    name: 'RecordChangeKind',
    description: 'delete: deleted, or no longer in your view (access withdrawn, or no longer matching the criteria)',
    values: { create: {}, update: {}, delete: {} },
  });
  const recordChange = new GraphQLObjectType<RecordChange, GraphqlContext>({
    name: 'RecordChange',
    description: 'One committed change of the aggregated record, as the subscriber may see it',
    fields: {
      cursor: { type: new GraphQLNonNull(GraphQLString), description: 'Give as `since` to resume after this change' },
      type: { type: new GraphQLNonNull(GraphQLString) },
      id: { type: new GraphQLNonNull(GraphQLID) },
      versionId: { type: new GraphQLNonNull(GraphQLString) },
      change: { type: new GraphQLNonNull(changeKind) },
      patient: { type: GraphQLID, description: 'The aggregated Patient whose record it belongs to' },
      resource: { type: resource, description: 'The resource now (null for a delete)', resolve: (c, _args, ctx) => fromEndpoint(ctx, c.resource, undefined) },
    },
  });
  const since = { type: GraphQLString, description: 'Resume after this cursor: the changes since are sent first' };
  return new GraphQLObjectType({
    name: 'RecordSubscription',
    fields: {
      patientRecordChanged: {
        type: new GraphQLNonNull(recordChange),
        description: "Changes to one aggregated patient's record (the Patient and every resource in its compartment)",
        args: { patient: { type: new GraphQLNonNull(GraphQLID) }, since },
        subscribe: (_root, args: { patient: string; since?: string | null }, ctx: GraphqlContext) => live(ctx).patientRecordChanged(args.patient, args.since),
        resolve: (change: RecordChange) => change,
      },
      resourceChanged: {
        type: new GraphQLNonNull(recordChange),
        description: 'Changes to aggregated resources of one type, optionally only those matching FHIR search criteria (`code=http://loinc.org|29463-7`)',
        args: { type: { type: new GraphQLNonNull(GraphQLString) }, criteria: { type: GraphQLString }, since },
        subscribe: (_root, args: { type: string; criteria?: string | null; since?: string | null }, ctx: GraphqlContext) =>
          live(ctx).resourceChanged(args.type, parseCriteria(args.criteria), args.since),
        resolve: (change: RecordChange) => change,
      },
    },
  });
}
