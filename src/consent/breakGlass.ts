import { randomUUID } from 'node:crypto';
import type { Caller } from '../access/caller';
import type { IssuedToken, TokenService } from '../access/tokens';
import { AGGREGATED_STORE } from '../aggregator/outbox';
import { NO_AUDIT, type AuditSink } from '../audit/auditLog';
import { ID } from '../fhir/ids';
import { badRequest, forbidden, notFound, OperationOutcomeError } from '../fhir/outcome';
import type { ResourceRepository } from '../store/resourceRepository';
import type { SqlClient } from '../store/sql';
import { patientIdOf } from './consentRegistry';

/**
 * Break-the-glass (issue 13 item 4): a clinician's client asserts an emergency for one patient with a reason
 * and gets a token carrying the `btg` claim; the access filter opens every label of that patient until the
 * window (BREAK_THE_GLASS_SECONDS, default 4 hours) ends, and the token lives exactly that window.
 * Two doors ask for it: the GraphQL `breakTheGlass` mutation and the token endpoint's `break_glass`
 * parameters. Every assertion is recorded, so the patient can list them afterwards, and audited (BALP
 * purpose of use BTG with the reason); a refused one is audited with its outcome too.
 */
export interface BreakGlassEvent {
  id: string;
  patientId: string;
  clientId: string;
  customerId: string;
  organizationId: string | null;
  teamId: string | null;
  practitionerId: string | null;
  reason: string;
  at: string;
  until: string;
}

interface Row {
  id: string;
  patient_id: string;
  client_id: string;
  customer_id: string;
  organization_id: string | null;
  team_id: string | null;
  practitioner_id: string | null;
  reason: string;
  created_at: Date | string;
  until: Date | string;
}

const event = (r: Row): BreakGlassEvent => ({
  id: r.id,
  patientId: r.patient_id,
  clientId: r.client_id,
  customerId: r.customer_id,
  organizationId: r.organization_id,
  teamId: r.team_id,
  practitionerId: r.practitioner_id,
  reason: r.reason,
  at: new Date(r.created_at).toISOString(),
  until: new Date(r.until).toISOString(),
});

export const DEFAULT_BREAK_GLASS_SECONDS = 4 * 60 * 60;

export class BreakGlass {
  constructor(private readonly deps: { sql: SqlClient; repo: ResourceRepository; tokens: TokenService; seconds: number; audit?: AuditSink; now?: () => number }) {}

  /** Records the emergency and returns a token that opens the patient's record for the window. */
  async assert(caller: Caller, patient: unknown, reason: unknown): Promise<IssuedToken & { breakGlass: BreakGlassEvent }> {
    const audit = this.deps.audit ?? NO_AUDIT;
    let result: IssuedToken & { breakGlass: BreakGlassEvent };
    try {
      result = await this.assertNow(caller, patient, reason);
    } catch (err) {
      if (err instanceof OperationOutcomeError) {
        const named = typeof patient === 'string' ? patient.replace(/^Patient\//, '') : '';
        await audit.record({
          subtype: 'break-the-glass',
          caller: { ...caller, breakGlass: undefined },
          patients: ID.test(named) ? [named] : [],
          status: err.status,
          detail: err.message,
        });
      }
      throw err;
    }
    const event = result.breakGlass;
    await audit.record({
      subtype: 'break-the-glass',
      caller: { ...caller, breakGlass: { patientId: event.patientId, reason: event.reason, until: Date.parse(event.until) / 1000 } },
      store: AGGREGATED_STORE,
      resources: [{ type: 'Patient', id: event.patientId }],
      entities: [
        {
          type: { system: 'http://terminology.hl7.org/CodeSystem/audit-entity-type', code: '2', display: 'System Object' },
          description: `break-the-glass until ${event.until}`,
          detail: [
            { type: 'reason', valueString: event.reason },
            { type: 'until', valueString: event.until },
          ],
        },
      ],
    });
    return result;
  }

  private async assertNow(caller: Caller, patient: unknown, reason: unknown): Promise<IssuedToken & { breakGlass: BreakGlassEvent }> {
    if (caller.family !== 'fhir' || caller.admin || !caller.customerId || caller.patientId) {
      throw forbidden('Break-the-glass needs a clinical client token from /oauth2/token');
    }
    const patientId = patientIdOf(patient);
    const why = typeof reason === 'string' ? reason.trim() : '';
    if (!why) throw badRequest("'reason' is required: say why the emergency access is needed", 'reason');
    if (why.length > 1000) throw badRequest("'reason' must be at most 1000 characters", 'reason');
    const found = await this.deps.repo.find(AGGREGATED_STORE, 'Patient', patientId);
    if (!found || found.deleted) throw notFound(`Patient/${patientId} is not in the aggregated record`);
    const now = Math.floor((this.deps.now ?? Date.now)() / 1000);
    const until = now + this.deps.seconds;
    const [row] = await this.deps.sql.query<Row[]>(
      `INSERT INTO break_glass (id, patient_id, client_id, customer_id, organization_id, team_id, practitioner_id, reason, created_at, until)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, to_timestamp($9), to_timestamp($10)) RETURNING *`,
      `btg-${randomUUID()}`,
      patientId,
      caller.clientId,
      caller.customerId,
      caller.organizationId ?? null,
      caller.teamId ?? null,
      caller.practitionerId ?? null,
      why,
      now,
      until,
    );
    const token = this.deps.tokens.issue(
      'fhir',
      {
        clientId: caller.clientId,
        customerId: caller.customerId,
        scopes: caller.scopes,
        organizationId: caller.organizationId,
        teamId: caller.teamId,
        practitionerId: caller.practitionerId,
        breakGlass: { patientId, reason: why, until },
      },
      { ttlSeconds: this.deps.seconds },
    );
    return { ...token, breakGlass: event(row) };
  }

  /** Every emergency access to one patient, newest first. */
  async list(patientId: string): Promise<BreakGlassEvent[]> {
    const rows = await this.deps.sql.query<Row[]>(`SELECT * FROM break_glass WHERE patient_id = $1 ORDER BY created_at DESC, id`, patientId);
    return rows.map(event);
  }
}
