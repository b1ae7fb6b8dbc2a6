import 'reflect-metadata';
import { Arg, Ctx, Field, ID, Int, Mutation, ObjectType, Query, Resolver } from 'type-graphql';
import { unauthorized } from '../fhir/outcome';
import type { PatientControlsFor } from '../consent/patientControls';
import type { GraphqlContext } from './fhirSchema';

/**
 * Consent, the patient's own controls and break-the-glass in GraphQL (issue 13 items 2-4). Each resolver is
 * one call of `ctx.consent` (consent/patientControls.ts), which decides who may act on whose record. The
 * Consent resources themselves are read as FHIR (`Consent`, `ConsentList`) under the access filter.
 */
@ObjectType({ description: "A patient's consent to one grantee (served as the FHIR Consent resource `id`)" })
export class ConsentRecordType {
  @Field(() => ID, { description: 'The Consent resource id on the aggregated endpoint' }) id!: string;
  @Field(() => ID) patientId!: string;
  @Field(() => String, { description: 'CareTeam/team-… or Practitioner/prac-…' }) grantee!: string;
  @Field(() => [String], { description: 'Privacy labels granted (empty when inactive)' }) labels!: string[];
  @Field(() => String, { description: 'active or inactive' }) status!: string;
  @Field(() => String, { description: 'ISO 8601 instant of the last change' }) dateTime!: string;
}

@ObjectType({ description: 'An emergency access asserted for a patient' })
export class BreakGlassEventType {
  @Field(() => ID) id!: string;
  @Field(() => ID) patientId!: string;
  @Field(() => String) clientId!: string;
  @Field(() => String) customerId!: string;
  @Field(() => String, { nullable: true }) organizationId!: string | null;
  @Field(() => String, { nullable: true }) teamId!: string | null;
  @Field(() => String, { nullable: true }) practitionerId!: string | null;
  @Field(() => String) reason!: string;
  @Field(() => String, { description: 'ISO 8601 instant it was asserted' }) at!: string;
  @Field(() => String, { description: 'ISO 8601 instant it ends' }) until!: string;
}

@ObjectType({ description: "A patient's own access settings and who broke the glass on their record" })
export class PatientAccessType {
  @Field(() => ID) patientId!: string;
  @Field(() => Boolean, { description: 'While frozen, the patient’s own access sees nothing' }) frozen!: boolean;
  @Field(() => [BreakGlassEventType]) breakGlass!: BreakGlassEventType[];
}

@ObjectType({ description: 'A short-lived token that opens one patient’s record (break-the-glass)' })
export class BreakGlassToken {
  @Field(() => String) access_token!: string;
  @Field(() => String) token_type!: string;
  @Field(() => Int) expires_in!: number;
  @Field(() => String) scope!: string;
  @Field(() => BreakGlassEventType) breakGlass!: BreakGlassEventType;
}

const controls = (ctx: GraphqlContext): PatientControlsFor => {
  if (!ctx.consent) throw unauthorized('A token is required');
  return ctx.consent;
};

const PATIENT = { nullable: true, description: 'The aggregated Patient id (a patient caller may leave it out)' } as const;

@Resolver()
export class ConsentResolver {
  @Query(() => [ConsentRecordType], { description: "A patient's consents (the patient, or the admin)" })
  consents(@Arg('patient', () => ID, PATIENT) patient: string | undefined, @Ctx() ctx: GraphqlContext) {
    return controls(ctx).list(patient ?? undefined);
  }
  @Query(() => PatientAccessType, { description: 'Whether the patient froze their access, and every break-the-glass on their record' })
  patientAccess(@Arg('patient', () => ID, PATIENT) patient: string | undefined, @Ctx() ctx: GraphqlContext) {
    return controls(ctx).access(patient ?? undefined);
  }
  @Mutation(() => ConsentRecordType, { description: 'Grants a privacy label to a team or practitioner' })
  consentGrant(
    @Arg('grantee', () => String) grantee: string,
    @Arg('label', () => String) label: string,
    @Arg('patient', () => ID, PATIENT) patient: string | undefined,
    @Ctx() ctx: GraphqlContext,
  ) {
    return controls(ctx).grant(patient ?? undefined, grantee, label);
  }
  @Mutation(() => Boolean, { description: 'Revokes a granted label (false when it was not granted)' })
  consentRevoke(
    @Arg('grantee', () => String) grantee: string,
    @Arg('label', () => String) label: string,
    @Arg('patient', () => ID, PATIENT) patient: string | undefined,
    @Ctx() ctx: GraphqlContext,
  ) {
    return controls(ctx).revoke(patient ?? undefined, grantee, label);
  }
  @Mutation(() => [ConsentRecordType], { description: 'Withdraws all sharing at once: every consent becomes inactive' })
  consentWithdrawAll(@Arg('patient', () => ID, PATIENT) patient: string | undefined, @Ctx() ctx: GraphqlContext) {
    return controls(ctx).withdrawAll(patient ?? undefined);
  }
  @Mutation(() => PatientAccessType, { description: "Freezes (true) or unfreezes (false) the patient's own access" })
  patientAccessFreeze(@Arg('frozen', () => Boolean) frozen: boolean, @Arg('patient', () => ID, PATIENT) patient: string | undefined, @Ctx() ctx: GraphqlContext) {
    return controls(ctx).setFrozen(patient ?? undefined, frozen);
  }
  @Mutation(() => BreakGlassToken, { description: "Emergency access to one patient's whole record, recorded with its reason; returns the token to use" })
  breakTheGlass(@Arg('patient', () => ID) patient: string, @Arg('reason', () => String) reason: string, @Ctx() ctx: GraphqlContext) {
    return controls(ctx).breakTheGlass(patient, reason);
  }
}
