import 'reflect-metadata';
import { Arg, Ctx, Field, ID, Int, ObjectType, Query, Resolver } from 'type-graphql';
import { unauthorized } from '../fhir/outcome';
import type { GraphqlContext } from './context';

/**
 * The audit log in GraphQL: `auditEvents` for the admin token (the same search as GET /admin/AuditEvent)
 * and `myRecordAccess` for a patient-scoped token (who accessed the caller's own record). Each is one call
 * of an operation the context provides (app.ts); AuditEvents are summarised from their BALP bodies.
 */
@ObjectType({ description: 'One audited access, summarised from its BALP AuditEvent' })
export class AuditRecord {
  @Field(() => ID) id!: string;
  @Field(() => String, { description: 'ISO 8601 instant' }) recorded!: string;
  @Field(() => String, { description: 'read, vread, search-type, history-instance, create, update, patch, delete, token-issue, consent-grant, …' }) subtype!: string;
  @Field(() => String, { description: 'C, R, U, D or E' }) action!: string;
  @Field(() => String, { description: '0 success, 4 refused (the caller’s failure), 8 failed (ours)' }) outcome!: string;
  @Field(() => String, { description: 'The client that made the request' }) agent!: string;
  @Field(() => [String], { description: 'On whose behalf: practitioner, team, organisation or patient ids' }) onBehalfOf!: string[];
  @Field(() => [String], { description: 'The resources returned or written (Type/id)' }) what!: string[];
  @Field(() => String, { nullable: true, description: 'Purpose of use, e.g. the reason given for a break-the-glass access' }) purpose!: string | null;
  @Field(() => String, { nullable: true, description: 'Why it failed, when it did' }) detail!: string | null;
}

export interface AuditOps {
  /** Admin only. */
  auditEvents?(args: Record<string, unknown>): Promise<AuditRecord[]>;
  /** Patient-scoped callers only. */
  myRecordAccess?(count?: number): Promise<AuditRecord[]>;
}

@Resolver()
export class AuditResolver {
  @Query(() => [AuditRecord], { description: 'Admin: the audit log, newest first (patient: an aggregated Patient id; date: FHIR date with prefix, e.g. ge2026-12-01)' })
  auditEvents(
    @Arg('patient', () => ID, { nullable: true }) patient: string | undefined,
    @Arg('date', () => [String], { nullable: true }) date: string[] | undefined,
    @Arg('agent', () => String, { nullable: true }) agent: string | undefined,
    @Arg('action', () => String, { nullable: true }) action: string | undefined,
    @Arg('count', () => Int, { nullable: true }) count: number | undefined,
    @Ctx() ctx: GraphqlContext,
  ) {
    const ops = ctx.audit?.auditEvents;
    if (!ops) throw unauthorized('auditEvents needs the admin token');
    const args: Record<string, unknown> = { patient, date, agent, action, _count: count === undefined || count === null ? undefined : String(count) };
    for (const k of Object.keys(args)) if (args[k] === undefined || args[k] === null) delete args[k];
    return ops(args);
  }

  @Query(() => [AuditRecord], { description: 'For a patient-scoped token: who accessed your record, when, what and why (newest first)' })
  myRecordAccess(@Arg('count', () => Int, { nullable: true }) count: number | undefined, @Ctx() ctx: GraphqlContext) {
    const ops = ctx.audit?.myRecordAccess;
    if (!ops) throw unauthorized('myRecordAccess needs a patient-scoped token');
    return ops(count ?? undefined);
  }
}
