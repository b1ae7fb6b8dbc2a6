import type { SqlClient } from '../store/sql';
import { badRequest } from '../fhir/outcome';
import type { AccessFilter } from '../service/ports';
import { TtlCache } from '../store/ttlCache';
import { PRIVACY_LABELS } from './rules';

/**
 * Who may see which aggregated resource (DESIGN §4, first cut), as one SQL predicate over the resource row
 * `r`, so search paging, totals, includes and history can never reveal a hidden resource. A caller is a
 * customer plus the organisations it is the source for; it sees
 * - resources whose source is its own (it sent them, or their source organisation is one of its own),
 * - resources whose privacy label the patient granted to it (an unlabelled one needs all four labels),
 * - merged Patients it can see something of, or has a grant from, and the shared merged types.
 */
export function accessFilter(identities: string[]): AccessFilter {
  return {
    condition: (r, bind) => {
      const ids = `${bind(identities)}::text[]`;
      return `EXISTS (SELECT 1 FROM agg_access a WHERE a.resource_pk = ${r}.pk AND (
      a.kind = 'shared'
      OR a.source_customers && ${ids}
      OR (a.kind = 'copied' AND (
        a.source_org = ANY(${ids})
        OR (a.label IS NOT NULL AND EXISTS (SELECT 1 FROM agg_grant g WHERE g.patient_id = a.patient_id AND g.label = a.label AND g.grantee = ANY(${ids})))
        OR (a.label IS NULL AND (SELECT count(DISTINCT g.label) FROM agg_grant g WHERE g.patient_id = a.patient_id AND g.grantee = ANY(${ids})) = 4)))
      OR (a.kind = 'patient' AND (
        EXISTS (SELECT 1 FROM agg_grant g WHERE g.patient_id = a.patient_id AND g.grantee = ANY(${ids}))
        OR EXISTS (SELECT 1 FROM agg_access x WHERE x.patient_id = a.patient_id AND x.kind = 'copied' AND (x.source_org = ANY(${ids}) OR x.source_customers && ${ids}))))))`;
    },
  };
}

/** A customer's identities for the filter: itself and the organisations it is the source for. */
export class CallerIdentities {
  private readonly cache: TtlCache<string, string[]>;

  constructor(private readonly sql: SqlClient) {
    this.cache = new TtlCache((customerId) => this.load(customerId), 5_000);
  }

  get(customerId: string): Promise<string[]> {
    return this.cache.get(customerId);
  }

  private async load(customerId: string): Promise<string[]> {
    const rows = await this.sql.query<{ org: string }[]>(
      `SELECT DISTINCT source_org AS org FROM agg_access WHERE kind = 'copied' AND source_org IS NOT NULL AND $1 = ANY(source_customers)`,
      customerId,
    );
    return [customerId, ...rows.map((r) => r.org)];
  }
}

export interface Grant {
  patientId: string;
  grantee: string;
  label: string;
}

/** Consent grants, managed through the admin API (GraphQL later). */
export class ConsentGrants {
  constructor(private readonly sql: SqlClient) {}

  private check(grant: Grant): void {
    if (!grant.patientId) throw badRequest("'patientId' is required", 'patientId');
    if (!grant.grantee) throw badRequest("'grantee' is required (an aggregated Organization id or a customer id)", 'grantee');
    if (!(PRIVACY_LABELS as readonly string[]).includes(grant.label)) throw badRequest(`'label' must be one of ${PRIVACY_LABELS.join(', ')}`, 'label');
  }

  async grant(grant: Grant): Promise<Grant> {
    this.check(grant);
    await this.sql.execute(`INSERT INTO agg_grant (patient_id, grantee, label) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`, grant.patientId, grant.grantee, grant.label);
    return grant;
  }

  async revoke(grant: Grant): Promise<{ revoked: boolean }> {
    this.check(grant);
    const n = await this.sql.execute(`DELETE FROM agg_grant WHERE patient_id = $1 AND grantee = $2 AND label = $3`, grant.patientId, grant.grantee, grant.label);
    return { revoked: n > 0 };
  }

  async list(patientId?: string): Promise<Grant[]> {
    const rows = await this.sql.query<{ patient_id: string; grantee: string; label: string }[]>(
      `SELECT patient_id, grantee, label FROM agg_grant WHERE $1::text IS NULL OR patient_id = $1 ORDER BY patient_id, grantee, label`,
      patientId ?? null,
    );
    return rows.map((r) => ({ patientId: r.patient_id, grantee: r.grantee, label: r.label }));
  }
}
