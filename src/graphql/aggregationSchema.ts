import 'reflect-metadata';
import { Arg, Ctx, Field, ID, Int, Mutation, ObjectType, Query, Resolver, buildSchemaSync } from 'type-graphql';
import type { GraphQLSchema } from 'graphql';
import { unauthorized } from '../fhir/outcome';
import type { AggregationView } from '../aggregator/views';
import type { GraphqlContext } from './fhirSchema';

/**
 * Our own GraphQL types (type-graphql): aggregation provenance and status, and the admin operations.
 * Resolvers only call the functions the context carries; access checks live behind them.
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
  @Field(() => [AggregationMember], { description: "The members from your own endpoints" }) members!: AggregationMember[];
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

@ObjectType()
class Customer {
  @Field(() => ID) id!: string;
  @Field(() => String) name!: string;
}

// Not `Endpoint`: that name is the FHIR R4 resource's (composeSchema refuses clashes).
@ObjectType({ description: 'A customer FHIR endpoint (one per inbound feed)' })
class CustomerEndpoint {
  @Field(() => ID) id!: string;
  @Field(() => ID) customerId!: string;
  @Field(() => String) fhirVersion!: string;
  @Field(() => String, { nullable: true }) name!: string | null;
  @Field(() => String, { nullable: true }) defaultSourceOrg!: string | null;
}

@ObjectType()
class ApiClient {
  @Field(() => ID) clientId!: string;
  @Field(() => ID, { nullable: true }) customerId!: string | null;
  @Field(() => String) family!: string;
  @Field(() => [String]) scopes!: string[];
  @Field(() => String, { nullable: true, description: 'Shown once, when the client is created' }) clientSecret?: string;
}

@ObjectType()
class ConsentGrant {
  @Field(() => ID) patientId!: string;
  @Field(() => String) grantee!: string;
  @Field(() => String) label!: string;
}

/** What the resolvers need; app.ts provides it with the access checks. */
export interface AggregationOps {
  aggregation(type: string, id: string): Promise<AggregationView>;
  status(endpoint: string, type: string, id: string): Promise<AggregationStatus>;
}

export interface AdminOps {
  customers(): Promise<Customer[]>;
  customerCreate(name: string): Promise<Customer>;
  endpoints(customerId?: string): Promise<CustomerEndpoint[]>;
  endpointCreate(input: { customerId: string; fhirVersion: string; name?: string; defaultSourceOrg?: string }): Promise<CustomerEndpoint>;
  clients(customerId?: string): Promise<ApiClient[]>;
  clientCreate(input: { customerId: string; family: string }): Promise<ApiClient>;
  consents(patientId?: string): Promise<ConsentGrant[]>;
  consentGrant(grant: ConsentGrant): Promise<ConsentGrant>;
  consentRevoke(grant: ConsentGrant): Promise<boolean>;
}

const admin = (ctx: GraphqlContext): AdminOps => {
  if (!ctx.admin) throw unauthorized('Admin operations need the admin token');
  return ctx.admin;
};
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
  aggregationStatus(@Arg('endpoint', () => ID) endpoint: string, @Arg('resourceType', () => String) resourceType: string, @Arg('id', () => ID) id: string, @Ctx() ctx: GraphqlContext) {
    return ops(ctx).status(endpoint, resourceType, id);
  }
}

@Resolver()
class AdminResolver {
  @Query(() => [Customer]) adminCustomers(@Ctx() ctx: GraphqlContext) {
    return admin(ctx).customers();
  }
  @Query(() => [CustomerEndpoint]) adminEndpoints(@Arg('customerId', () => ID, { nullable: true }) customerId: string | undefined, @Ctx() ctx: GraphqlContext) {
    return admin(ctx).endpoints(customerId ?? undefined);
  }
  @Query(() => [ApiClient]) adminClients(@Arg('customerId', () => ID, { nullable: true }) customerId: string | undefined, @Ctx() ctx: GraphqlContext) {
    return admin(ctx).clients(customerId ?? undefined);
  }
  @Query(() => [ConsentGrant]) adminConsents(@Arg('patientId', () => ID, { nullable: true }) patientId: string | undefined, @Ctx() ctx: GraphqlContext) {
    return admin(ctx).consents(patientId ?? undefined);
  }
  @Mutation(() => Customer) adminCustomerCreate(@Arg('name', () => String) name: string, @Ctx() ctx: GraphqlContext) {
    return admin(ctx).customerCreate(name);
  }
  @Mutation(() => CustomerEndpoint) adminEndpointCreate(
    @Arg('customerId', () => ID) customerId: string,
    @Arg('fhirVersion', () => String) fhirVersion: string,
    @Arg('name', () => String, { nullable: true }) name: string | undefined,
    @Arg('defaultSourceOrg', () => String, { nullable: true }) defaultSourceOrg: string | undefined,
    @Ctx() ctx: GraphqlContext,
  ) {
    return admin(ctx).endpointCreate({ customerId, fhirVersion, name: name ?? undefined, defaultSourceOrg: defaultSourceOrg ?? undefined });
  }
  @Mutation(() => ApiClient) adminClientCreate(@Arg('customerId', () => ID) customerId: string, @Arg('family', () => String) family: string, @Ctx() ctx: GraphqlContext) {
    return admin(ctx).clientCreate({ customerId, family });
  }
  @Mutation(() => ConsentGrant) adminConsentGrant(@Arg('patientId', () => ID) patientId: string, @Arg('grantee', () => String) grantee: string, @Arg('label', () => String) label: string, @Ctx() ctx: GraphqlContext) {
    return admin(ctx).consentGrant({ patientId, grantee, label });
  }
  @Mutation(() => Boolean) adminConsentRevoke(@Arg('patientId', () => ID) patientId: string, @Arg('grantee', () => String) grantee: string, @Arg('label', () => String) label: string, @Ctx() ctx: GraphqlContext) {
    return admin(ctx).consentRevoke({ patientId, grantee, label });
  }
}

let built: GraphQLSchema | undefined;

export function buildAggregationSchema(): GraphQLSchema {
  built ??= buildSchemaSync({ resolvers: [AggregationResolver, AdminResolver], validate: false });
  return built;
}
