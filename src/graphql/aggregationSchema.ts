import 'reflect-metadata';
import { Arg, Ctx, Field, ID, Int, ObjectType, Query, Resolver, buildSchemaSync } from 'type-graphql';
import type { GraphQLSchema } from 'graphql';
import { unauthorized } from '../fhir/outcome';
import type { AggregationView } from '../aggregator/views';
import { AdminResolver } from './adminSchema';
import { OrganizationResolver } from './organizationSchema';
import { AuditResolver } from './auditSchema';
import { ConsentResolver } from './consentSchema';
import { AggregationReport } from './aggregationReportTypes';
import { NativeResolver } from './nativeSchema';
import type { GraphqlContext } from './fhirSchema';

/**
 * Our own GraphQL types (type-graphql): aggregation provenance and status, with the admin operations of
 * adminSchema.ts. Resolvers only call the functions the context carries; access checks live behind them.
 */
@ObjectType({ description: 'An upstream resource that contributes to an aggregated one' })
class AggregationMember {
  @Field(() => String) endpoint!: string;
  @Field(() => String) customer!: string;
  @Field(() => String) upstreamType!: string;
  @Field(() => ID) upstreamId!: string;
  @Field(() => Int, { nullable: true }) upstreamVersion!: number | null;
  @Field(() => String, { nullable: true }) lastUpdated!: string | null;
}

@ObjectType({ description: 'Which upstream supplied a single-valued element of a merged resource' })
class ElementSource {
  @Field(() => String) element!: string;
  @Field(() => String, { nullable: true, description: "Null when another customer's endpoint supplied it" }) endpoint!: string | null;
  @Field(() => ID, { nullable: true, description: "Null when another customer's endpoint supplied it" }) upstreamId!: string | null;
}

@ObjectType({ description: 'How an aggregated resource came about' })
class Aggregation {
  @Field(() => String) resourceType!: string;
  @Field(() => ID) id!: string;
  @Field(() => String, { description: 'The grouping rule, or "copied one-to-one"' }) rule!: string;
  @Field(() => [AggregationMember], { description: 'The members from your own endpoints' }) members!: AggregationMember[];
  @Field(() => Int, { description: "How many members come from other customers' endpoints (not named)" }) otherSources!: number;
  @Field(() => [ElementSource]) elementSources!: ElementSource[];
}

@ObjectType({ description: 'What the aggregator made of one upstream resource' })
class AggregationStatus {
  @Field(() => String, { description: 'included, excluded or pending' }) status!: string;
  @Field(() => String, { nullable: true }) reason!: string | null;
  @Field(() => String, { nullable: true }) expression!: string | null;
  @Field(() => ID, { nullable: true }) aggregatedId!: string | null;
}

/** What the resolvers need; app.ts provides it with the access checks. */
export interface AggregationOps {
  aggregation(type: string, id: string): Promise<AggregationView>;
  status(endpoint: string, type: string, id: string): Promise<AggregationStatus>;
  report(endpoint: string): Promise<AggregationReport>;
}

const ops = (ctx: GraphqlContext): AggregationOps => {
  if (!ctx.aggregation) throw unauthorized('Aggregation views need a token from /oauth2/token');
  return ctx.aggregation;
};

@Resolver()
class AggregationResolver {
  @Query(() => Aggregation, { description: 'Upstream members, grouping rule and element provenance of an aggregated resource' })
  aggregation(@Arg('resourceType', () => String) resourceType: string, @Arg('id', () => ID) id: string, @Ctx() ctx: GraphqlContext) {
    return ops(ctx).aggregation(resourceType, id);
  }

  @Query(() => AggregationStatus, { description: 'Aggregation status and exclusion reason of a resource on one of your endpoints' })
  aggregationStatus(
    @Arg('endpoint', () => ID) endpoint: string,
    @Arg('resourceType', () => String) resourceType: string,
    @Arg('id', () => ID) id: string,
    @Ctx() ctx: GraphqlContext,
  ) {
    return ops(ctx).status(endpoint, resourceType, id);
  }

  @Query(() => AggregationReport, {
    description: 'What the aggregator made of the resources of one of your endpoints: counts per type and rule, and the root causes of exclusions',
  })
  aggregationReport(@Arg('endpoint', () => ID) endpoint: string, @Ctx() ctx: GraphqlContext) {
    return ops(ctx).report(endpoint);
  }
}

let built: GraphQLSchema | undefined;

export function buildAggregationSchema(): GraphQLSchema {
  built ??= buildSchemaSync({ resolvers: [AggregationResolver, AdminResolver, OrganizationResolver, AuditResolver, ConsentResolver, NativeResolver], validate: false });
  return built;
}
