import type { Caller } from '../access/caller';
import type { AccessFilter } from '../service/ports';
import type { SqlClient } from '../store/sql';

/**
 * Who may see which aggregated resource (DESIGN §4), as one SQL predicate over the resource row `r` and its
 * `agg_access` row `a`, so search paging, totals, includes and history can never reveal a hidden resource.
 * A caller sees a resource when any of these holds:
 * - self: it is in the compartment of the patient the (patient-scoped) caller speaks for, unless they froze it;
 * - source view: the caller's customer supplied it;
 * - consent: its privacy label is granted by its patient to one of the caller's grantees (its team, or its
 *   practitioner and their teams, or every team of its organisation); an unlabelled data point needs all four
 *   labels; a Consent resource is seen by its grantee;
 * - break-the-glass: it belongs to the patient of the caller's unexpired emergency access;
 * and anyone sees the shared merged types (Organization, Practitioner, …). A merged Patient is seen by whoever
 * sees something of that patient or holds a grant from them.
 */
export interface CallerAccess {
  /** Source view: the customer whose supplied data the caller sees (absent for a patient-scoped caller). */
  customerId?: string;
  /** Consent grantees the caller acts as: `CareTeam/team-…`, `Practitioner/prac-…`. */
  grantees: string[];
  /** The patient whose whole compartment the caller sees (self access, not frozen). */
  selfPatientId?: string;
  /** The patient an unexpired break-the-glass opens. */
  breakGlassPatientId?: string;
}

export function accessFilter(access: CallerAccess): AccessFilter {
  return {
    readsConsent: access.grantees.length > 0,
    condition: (r, bind) => {
      const any = [`a.kind = 'shared'`];
      if (access.selfPatientId) any.push(`a.patient_id = ${bind(access.selfPatientId)}`);
      if (access.breakGlassPatientId) any.push(`(a.kind IN ('copied', 'patient') AND a.patient_id = ${bind(access.breakGlassPatientId)})`);
      if (access.customerId) {
        const customer = bind(access.customerId);
        any.push(`${customer} = ANY(a.source_customers)`);
        any.push(`(a.kind = 'patient' AND EXISTS (SELECT 1 FROM agg_access x WHERE x.patient_id = a.patient_id AND x.kind = 'copied' AND ${customer} = ANY(x.source_customers)))`);
      }
      if (access.grantees.length) {
        const grantees = `${bind(access.grantees)}::text[]`;
        const granted = `c.patient_id = a.patient_id AND c.status = 'active' AND c.grantee = ANY(${grantees})`;
        any.push(`(a.kind = 'consent' AND a.grantee = ANY(${grantees}))`);
        any.push(`(a.kind = 'copied' AND a.label IS NOT NULL AND EXISTS (SELECT 1 FROM consent c WHERE ${granted} AND a.label = ANY(c.labels)))`);
        any.push(
          `(a.kind = 'copied' AND a.label IS NULL AND (SELECT count(DISTINCT l.label) FROM consent c CROSS JOIN LATERAL unnest(c.labels) AS l(label) WHERE ${granted}) = 4)`,
        );
        any.push(`(a.kind = 'patient' AND EXISTS (SELECT 1 FROM consent c WHERE ${granted} AND cardinality(c.labels) > 0))`);
      }
      return `EXISTS (SELECT 1 FROM agg_access a WHERE a.resource_pk = ${r}.pk AND (${any.join('\n      OR ')}))`;
    },
  };
}

/**
 * A caller's access, read fresh for every request (no cache: a grant, revoke or freeze counts on the next
 * request). Grantees follow the binding of the client: a team acts with its own grants; a practitioner with
 * theirs and their teams'; a client bound to neither with its organisation's, the union of its teams'.
 * A disabled team's grants no longer count through its organisation or its members (disabling is for good).
 */
export class CallerAccessLoader {
  constructor(
    private readonly sql: SqlClient,
    private readonly now: () => number = Date.now,
  ) {}

  async load(caller: Caller): Promise<CallerAccess> {
    const breakGlassPatientId = caller.breakGlass && caller.breakGlass.until > this.now() / 1000 ? caller.breakGlass.patientId : undefined;
    if (caller.patientId) {
      // A patient-scoped token speaks for the patient alone: no source view, no grants of anyone's.
      const frozen = await this.sql.query<{ frozen: boolean }[]>(`SELECT frozen FROM patient_access WHERE patient_id = $1`, caller.patientId);
      return { grantees: [], selfPatientId: frozen[0]?.frozen ? undefined : caller.patientId, breakGlassPatientId };
    }
    return { customerId: caller.customerId, grantees: await this.grantees(caller), breakGlassPatientId };
  }

  private async grantees(caller: Caller): Promise<string[]> {
    if (caller.teamId) return [`CareTeam/${caller.teamId}`];
    if (caller.practitionerId) {
      const teams = await this.sql.query<{ team_id: string }[]>(
        `SELECT m.team_id FROM team_member m JOIN team t ON t.id = m.team_id WHERE m.practitioner_id = $1 AND t.disabled_at IS NULL`,
        caller.practitionerId,
      );
      return [`Practitioner/${caller.practitionerId}`, ...teams.map((t) => `CareTeam/${t.team_id}`)];
    }
    if (caller.organizationId) {
      const teams = await this.sql.query<{ id: string }[]>(`SELECT id FROM team WHERE organization_id = $1 AND disabled_at IS NULL`, caller.organizationId);
      return teams.map((t) => `CareTeam/${t.id}`);
    }
    return [];
  }
}
