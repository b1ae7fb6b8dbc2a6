import 'reflect-metadata';
import { Arg, Ctx, Field, ID, Mutation, ObjectType, Query, Resolver } from 'type-graphql';
import { unauthorized } from '../fhir/outcome';
import type { GraphqlContext } from './fhirSchema';

/**
 * The GraphQL admin door for organisations, teams and practitioners (issue 13), for the admin token: each
 * resolver is one call of `ctx.admin.organizations` (adminOps.ts, over the admin service the REST admin API
 * uses), with arguments passed on as received so that the service refuses bad ones in the REST API's words.
 * Type names are prefixed: `Organization` and `Practitioner` are FHIR R4 resources (composeSchema refuses clashes).
 */
@ObjectType({ description: "A customer's organisation; API clients act for one" })
export class CustomerOrganization {
  @Field(() => ID) id!: string;
  @Field(() => ID) customerId!: string;
  @Field(() => String) name!: string;
  @Field(() => String, { description: 'UUID: how the legacy family names the organisation (X-Org-Public-Id)' }) publicId!: string;
  @Field(() => ID, { nullable: true }) defaultTeamId!: string | null;
  @Field(() => String, { nullable: true, description: 'ISO 8601 instant; a disabled organisation’s clients get no tokens' }) disabledAt!: string | null;
  @Field(() => String, { description: 'ISO 8601 instant' }) createdAt!: string;
}

@ObjectType({ description: 'A team of an organisation; its practitioners belong to it' })
export class CustomerTeam {
  @Field(() => ID) id!: string;
  @Field(() => ID) organizationId!: string;
  @Field(() => String) name!: string;
  @Field(() => String, { nullable: true, description: 'Unique within the organisation; how messages name the team' }) alias!: string | null;
  @Field(() => [ID]) practitionerIds!: string[];
  @Field(() => String, { nullable: true, description: 'ISO 8601 instant' }) disabledAt!: string | null;
  @Field(() => String, { description: 'ISO 8601 instant' }) createdAt!: string;
}

@ObjectType({ description: 'A practitioner of an organisation' })
export class CustomerPractitioner {
  @Field(() => ID) id!: string;
  @Field(() => ID) organizationId!: string;
  @Field(() => String) name!: string;
  @Field(() => [ID]) teamIds!: string[];
  @Field(() => String, { nullable: true, description: 'ISO 8601 instant' }) disabledAt!: string | null;
  @Field(() => String, { description: 'ISO 8601 instant' }) createdAt!: string;
}

/** What the resolvers need, in GraphQL's shapes; adminOps.ts provides it over the admin service. */
export interface OrganizationOps {
  organizations(customerId?: string): Promise<CustomerOrganization[]>;
  organization(id: string): Promise<CustomerOrganization>;
  organizationCreate(input: { customerId: unknown; name: unknown }): Promise<CustomerOrganization>;
  organizationUpdate(id: string, input: { name?: unknown }): Promise<CustomerOrganization>;
  organizationDisable(id: string): Promise<CustomerOrganization>;
  teams(organizationId?: string): Promise<CustomerTeam[]>;
  team(id: string): Promise<CustomerTeam>;
  teamCreate(input: { organizationId: unknown; name: unknown; alias?: unknown }): Promise<CustomerTeam>;
  teamUpdate(id: string, input: { name?: unknown; alias?: unknown }): Promise<CustomerTeam>;
  teamDisable(id: string): Promise<CustomerTeam>;
  teamAddMember(id: string, input: { practitionerId: unknown }): Promise<CustomerTeam>;
  teamRemoveMember(id: string, input: { practitionerId: unknown }): Promise<CustomerTeam>;
  practitioners(organizationId?: string): Promise<CustomerPractitioner[]>;
  practitioner(id: string): Promise<CustomerPractitioner>;
  practitionerCreate(input: { organizationId: unknown; name: unknown }): Promise<CustomerPractitioner>;
  practitionerUpdate(id: string, input: { name?: unknown }): Promise<CustomerPractitioner>;
  practitionerDisable(id: string): Promise<CustomerPractitioner>;
}

const ops = (ctx: GraphqlContext): OrganizationOps => {
  if (!ctx.admin) throw unauthorized('Admin operations need the admin token');
  return ctx.admin.organizations;
};

@Resolver()
export class OrganizationResolver {
  @Query(() => [CustomerOrganization]) adminOrganizations(@Arg('customerId', () => ID, { nullable: true }) customerId: string | undefined, @Ctx() ctx: GraphqlContext) {
    return ops(ctx).organizations(customerId ?? undefined);
  }
  @Query(() => CustomerOrganization) adminOrganization(@Arg('id', () => ID) id: string, @Ctx() ctx: GraphqlContext) {
    return ops(ctx).organization(id);
  }
  @Query(() => [CustomerTeam]) adminTeams(@Arg('organizationId', () => ID, { nullable: true }) organizationId: string | undefined, @Ctx() ctx: GraphqlContext) {
    return ops(ctx).teams(organizationId ?? undefined);
  }
  @Query(() => CustomerTeam) adminTeam(@Arg('id', () => ID) id: string, @Ctx() ctx: GraphqlContext) {
    return ops(ctx).team(id);
  }
  @Query(() => [CustomerPractitioner]) adminPractitioners(@Arg('organizationId', () => ID, { nullable: true }) organizationId: string | undefined, @Ctx() ctx: GraphqlContext) {
    return ops(ctx).practitioners(organizationId ?? undefined);
  }
  @Query(() => CustomerPractitioner) adminPractitioner(@Arg('id', () => ID) id: string, @Ctx() ctx: GraphqlContext) {
    return ops(ctx).practitioner(id);
  }

  @Mutation(() => CustomerOrganization, { description: 'A new organisation of a customer, with its default team' })
  adminOrganizationCreate(@Arg('customerId', () => ID) customerId: string, @Arg('name', () => String) name: string, @Ctx() ctx: GraphqlContext) {
    return ops(ctx).organizationCreate({ customerId, name });
  }
  @Mutation(() => CustomerOrganization) adminOrganizationUpdate(@Arg('id', () => ID) id: string, @Arg('name', () => String) name: string, @Ctx() ctx: GraphqlContext) {
    return ops(ctx).organizationUpdate(id, { name });
  }
  @Mutation(() => CustomerOrganization, { description: 'For good: its clients get no tokens, and their tokens are refused from the next request on' })
  adminOrganizationDisable(@Arg('id', () => ID) id: string, @Ctx() ctx: GraphqlContext) {
    return ops(ctx).organizationDisable(id);
  }
  @Mutation(() => CustomerTeam) adminTeamCreate(
    @Arg('organizationId', () => ID) organizationId: string,
    @Arg('name', () => String) name: string,
    @Arg('alias', () => String, { nullable: true }) alias: string | undefined,
    @Ctx() ctx: GraphqlContext,
  ) {
    return ops(ctx).teamCreate({ organizationId, name, alias });
  }
  @Mutation(() => CustomerTeam, { description: 'Changes what is given; alias: null clears the alias' })
  adminTeamUpdate(
    @Arg('id', () => ID) id: string,
    @Arg('name', () => String, { nullable: true }) name: string | null | undefined,
    @Arg('alias', () => String, { nullable: true }) alias: string | null | undefined,
    @Ctx() ctx: GraphqlContext,
  ) {
    // An omitted argument arrives undefined (leave it), an explicit null as null (clear it).
    return ops(ctx).teamUpdate(id, { name, alias });
  }
  @Mutation(() => CustomerTeam, { description: 'For good: clients bound to it get no tokens, and their tokens are refused from the next request on' })
  adminTeamDisable(@Arg('id', () => ID) id: string, @Ctx() ctx: GraphqlContext) {
    return ops(ctx).teamDisable(id);
  }
  @Mutation(() => CustomerTeam, { description: 'A practitioner of the same organisation joins the team' })
  adminTeamAddMember(@Arg('teamId', () => ID) teamId: string, @Arg('practitionerId', () => ID) practitionerId: string, @Ctx() ctx: GraphqlContext) {
    return ops(ctx).teamAddMember(teamId, { practitionerId });
  }
  @Mutation(() => CustomerTeam) adminTeamRemoveMember(
    @Arg('teamId', () => ID) teamId: string,
    @Arg('practitionerId', () => ID) practitionerId: string,
    @Ctx() ctx: GraphqlContext,
  ) {
    return ops(ctx).teamRemoveMember(teamId, { practitionerId });
  }
  @Mutation(() => CustomerPractitioner) adminPractitionerCreate(
    @Arg('organizationId', () => ID) organizationId: string,
    @Arg('name', () => String) name: string,
    @Ctx() ctx: GraphqlContext,
  ) {
    return ops(ctx).practitionerCreate({ organizationId, name });
  }
  @Mutation(() => CustomerPractitioner) adminPractitionerUpdate(@Arg('id', () => ID) id: string, @Arg('name', () => String) name: string, @Ctx() ctx: GraphqlContext) {
    return ops(ctx).practitionerUpdate(id, { name });
  }
  @Mutation(() => CustomerPractitioner, { description: 'For good: clients bound to it get no tokens, and their tokens are refused from the next request on' })
  adminPractitionerDisable(@Arg('id', () => ID) id: string, @Ctx() ctx: GraphqlContext) {
    return ops(ctx).practitionerDisable(id);
  }
}
