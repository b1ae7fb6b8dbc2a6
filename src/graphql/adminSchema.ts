import 'reflect-metadata';
import { Arg, Ctx, Field, ID, Int, Mutation, ObjectType, Query, Resolver } from 'type-graphql';
import { unauthorized } from '../fhir/outcome';
import type { GraphqlContext } from './fhirSchema';
import type { OrganizationOps } from './organizationSchema';
import { AggregationReport } from './aggregationReportTypes';

/**
 * The GraphQL admin door (type-graphql): queries and mutations for the admin token, each one call of
 * `ctx.admin` (adminOps.ts, over the admin service that the REST admin API uses too). Arguments are passed on
 * as received: the service validates them, so a bad value is refused here with the REST API's words.
 */
@ObjectType()
export class Customer {
  @Field(() => ID) id!: string;
  @Field(() => String) name!: string;
  @Field(() => ID, { nullable: true, description: 'The organisation its clients act for unless told otherwise' }) defaultOrganizationId!: string | null;
  @Field(() => String, { description: 'ISO 8601 instant' }) createdAt!: string;
}

// Not `Endpoint`: that name is the FHIR R4 resource's (composeSchema refuses clashes).
@ObjectType({ description: 'A customer FHIR endpoint (one per inbound feed)' })
export class CustomerEndpoint {
  @Field(() => ID) id!: string;
  @Field(() => ID) customerId!: string;
  @Field(() => String) fhirVersion!: string;
  @Field(() => String, { nullable: true }) name!: string | null;
  @Field(() => String, { nullable: true, description: 'Organization/<id>: the source organisation of resources whose patient names none' })
  defaultSourceOrg!: string | null;
  @Field(() => Boolean, { description: "A disabled endpoint's FHIR requests are refused; what it sent stays aggregated" }) enabled!: boolean;
  @Field(() => String, { description: 'ISO 8601 instant' }) createdAt!: string;
  @Field(() => Int, { nullable: true, description: 'Set by adminEndpointUpdate: how many of its resources were queued for re-aggregation' })
  requeued?: number;
}

@ObjectType()
export class ApiClient {
  @Field(() => ID) clientId!: string;
  @Field(() => ID, { nullable: true }) customerId!: string | null;
  @Field(() => String) family!: string;
  @Field(() => String, { nullable: true }) name!: string | null;
  @Field(() => [String]) scopes!: string[];
  @Field(() => ID, { nullable: true, description: 'The organisation it acts for (token claim org)' }) organizationId!: string | null;
  @Field(() => ID, { nullable: true, description: 'The team it is bound to, if any (token claim team)' }) teamId!: string | null;
  @Field(() => ID, { nullable: true, description: 'The practitioner it is bound to, if any (token claim practitioner)' }) practitionerId!: string | null;
  @Field(() => String, { description: 'ISO 8601 instant' }) createdAt!: string;
  @Field(() => String, { nullable: true, description: 'ISO 8601 instant; a revoked client gets no new tokens' }) revokedAt!: string | null;
  @Field(() => String, { nullable: true, description: 'Shown once, when the client is created or its secret rotated' }) clientSecret?: string;
}

@ObjectType({ description: "A patient's consent to one grantee (the FHIR Consent resource `id`)" })
export class ConsentGrant {
  @Field(() => ID) id!: string;
  @Field(() => ID) patientId!: string;
  @Field(() => String, { description: 'CareTeam/team-… or Practitioner/prac-…' }) grantee!: string;
  @Field(() => [String]) labels!: string[];
  @Field(() => String, { description: 'active or inactive' }) status!: string;
  @Field(() => String, { description: 'ISO 8601 instant of the last change' }) dateTime!: string;
}

/** What the resolvers need, in GraphQL's shapes; adminOps.ts provides it over the admin service. */
export interface AdminOps {
  customers(): Promise<Customer[]>;
  customerCreate(input: { name: unknown }): Promise<Customer>;
  endpoints(customerId?: string): Promise<CustomerEndpoint[]>;
  endpoint(id: string): Promise<CustomerEndpoint>;
  endpointCreate(input: { customerId: unknown; fhirVersion: unknown; name?: unknown; defaultSourceOrg?: unknown }): Promise<CustomerEndpoint>;
  endpointUpdate(id: string, input: { name?: unknown; defaultSourceOrg?: unknown; enabled?: unknown }): Promise<CustomerEndpoint>;
  endpointDisable(id: string): Promise<CustomerEndpoint>;
  clients(customerId?: string): Promise<ApiClient[]>;
  clientCreate(input: {
    customerId?: unknown;
    organizationId?: unknown;
    teamId?: unknown;
    practitionerId?: unknown;
    family: unknown;
    name?: unknown;
    scopes?: unknown;
  }): Promise<ApiClient>;
  clientRevoke(clientId: string): Promise<ApiClient>;
  clientRotateSecret(clientId: string): Promise<ApiClient>;
  consents(patientId?: string): Promise<ConsentGrant[]>;
  consentGrant(grant: { patientId: string; grantee: string; label: string }): Promise<ConsentGrant>;
  consentRevoke(grant: { patientId: string; grantee: string; label: string }): Promise<boolean>;
  aggregationReport(endpointId: string): Promise<AggregationReport>;
  organizations: OrganizationOps;
}

const admin = (ctx: GraphqlContext): AdminOps => {
  if (!ctx.admin) throw unauthorized('Admin operations need the admin token');
  return ctx.admin;
};

@Resolver()
export class AdminResolver {
  @Query(() => [Customer]) adminCustomers(@Ctx() ctx: GraphqlContext) {
    return admin(ctx).customers();
  }
  @Query(() => [CustomerEndpoint]) adminEndpoints(@Arg('customerId', () => ID, { nullable: true }) customerId: string | undefined, @Ctx() ctx: GraphqlContext) {
    return admin(ctx).endpoints(customerId ?? undefined);
  }
  @Query(() => CustomerEndpoint) adminEndpoint(@Arg('id', () => ID) id: string, @Ctx() ctx: GraphqlContext) {
    return admin(ctx).endpoint(id);
  }
  @Query(() => [ApiClient], { description: 'API clients, never their secrets' }) adminClients(
    @Arg('customerId', () => ID, { nullable: true }) customerId: string | undefined,
    @Ctx() ctx: GraphqlContext,
  ) {
    return admin(ctx).clients(customerId ?? undefined);
  }
  @Query(() => AggregationReport, { description: "An endpoint's aggregation report (as its owner sees it with aggregationReport)" })
  adminAggregationReport(@Arg('endpoint', () => ID) endpoint: string, @Ctx() ctx: GraphqlContext) {
    return admin(ctx).aggregationReport(endpoint);
  }
  @Query(() => [ConsentGrant]) adminConsents(@Arg('patientId', () => ID, { nullable: true }) patientId: string | undefined, @Ctx() ctx: GraphqlContext) {
    return admin(ctx).consents(patientId ?? undefined);
  }

  @Mutation(() => Customer) adminCustomerCreate(@Arg('name', () => String) name: string, @Ctx() ctx: GraphqlContext) {
    return admin(ctx).customerCreate({ name });
  }
  @Mutation(() => CustomerEndpoint) adminEndpointCreate(
    @Arg('customerId', () => ID) customerId: string,
    @Arg('fhirVersion', () => String, { description: 'R4 or STU3' }) fhirVersion: string,
    @Arg('name', () => String, { nullable: true }) name: string | undefined,
    @Arg('defaultSourceOrg', () => String, { nullable: true, description: 'Organization/<id>' }) defaultSourceOrg: string | undefined,
    @Ctx() ctx: GraphqlContext,
  ) {
    return admin(ctx).endpointCreate({ customerId, fhirVersion, name, defaultSourceOrg });
  }
  @Mutation(() => CustomerEndpoint, {
    description: 'Changes what is given (null clears name or defaultSourceOrg); a defaultSourceOrg re-aggregates the endpoint’s resources',
  })
  adminEndpointUpdate(
    @Arg('id', () => ID) id: string,
    @Arg('name', () => String, { nullable: true }) name: string | null | undefined,
    @Arg('defaultSourceOrg', () => String, { nullable: true, description: 'Organization/<id>' }) defaultSourceOrg: string | null | undefined,
    @Arg('enabled', () => Boolean, { nullable: true }) enabled: boolean | null | undefined,
    @Ctx() ctx: GraphqlContext,
  ) {
    // An omitted argument arrives undefined (leave it), an explicit null as null (clear it).
    return admin(ctx).endpointUpdate(id, { name, defaultSourceOrg, enabled });
  }
  @Mutation(() => CustomerEndpoint, { description: 'Refuses the endpoint’s FHIR requests from now on; its data stays aggregated' })
  adminEndpointDisable(@Arg('id', () => ID) id: string, @Ctx() ctx: GraphqlContext) {
    return admin(ctx).endpointDisable(id);
  }
  @Mutation(() => ApiClient, {
    description:
      'A new client; its clientSecret is shown only in this answer. It acts for organizationId (default: the customer’s default organisation), optionally bound to one of its teams or practitioners',
  })
  adminClientCreate(
    @Arg('customerId', () => ID, { nullable: true, description: 'May be left out when organizationId is given' }) customerId: string | undefined,
    @Arg('family', () => String, { description: 'fhir or legacy' }) family: string,
    @Arg('name', () => String, { nullable: true }) name: string | undefined,
    @Arg('scopes', () => [String], { nullable: true, description: 'SMART scopes, e.g. ["system/Patient.rs"] (default system/*.cruds)' }) scopes: string[] | undefined,
    @Arg('organizationId', () => ID, { nullable: true, description: 'Default: the customer’s default organisation' }) organizationId: string | undefined,
    @Arg('teamId', () => ID, { nullable: true, description: 'A team of the organisation the client acts as (its web UI)' }) teamId: string | undefined,
    @Arg('practitionerId', () => ID, { nullable: true, description: 'A practitioner of the organisation the client acts as (their app)' }) practitionerId: string | undefined,
    @Ctx() ctx: GraphqlContext,
  ) {
    return admin(ctx).clientCreate({ customerId, organizationId, teamId, practitionerId, family, name, scopes });
  }
  @Mutation(() => ApiClient, { description: 'The client gets no new tokens; issued ones run out within their short lifetime' })
  adminClientRevoke(@Arg('clientId', () => ID) clientId: string, @Ctx() ctx: GraphqlContext) {
    return admin(ctx).clientRevoke(clientId);
  }
  @Mutation(() => ApiClient, { description: 'A new clientSecret, shown only in this answer; the old one stops working at once' })
  adminClientRotateSecret(@Arg('clientId', () => ID) clientId: string, @Ctx() ctx: GraphqlContext) {
    return admin(ctx).clientRotateSecret(clientId);
  }
  @Mutation(() => ConsentGrant) adminConsentGrant(
    @Arg('patientId', () => ID) patientId: string,
    @Arg('grantee', () => String) grantee: string,
    @Arg('label', () => String) label: string,
    @Ctx() ctx: GraphqlContext,
  ) {
    return admin(ctx).consentGrant({ patientId, grantee, label });
  }
  @Mutation(() => Boolean) adminConsentRevoke(
    @Arg('patientId', () => ID) patientId: string,
    @Arg('grantee', () => String) grantee: string,
    @Arg('label', () => String) label: string,
    @Ctx() ctx: GraphqlContext,
  ) {
    return admin(ctx).consentRevoke({ patientId, grantee, label });
  }
}
