import { randomUUID } from 'node:crypto';
import { AGGREGATED_STORE } from '../aggregator/outbox';
import { PRIVACY_LABELS } from '../aggregator/rules';
import { NO_AUDIT, type AuditSink } from '../audit/auditLog';
import type { AuditActivity } from '../audit/auditEvent';
import { ID, ID_SOURCE } from '../fhir/ids';
import { badRequest, notFound, OperationOutcomeError } from '../fhir/outcome';
import type { ResourceRepository } from '../store/resourceRepository';
import type { SqlClient, Tx } from '../store/sql';
import { consentResource, type ConsentRecord } from './consentResource';

/**
 * Consent records (issue 13 item 2) and the patient's own access settings (item 3), for every door (admin
 * API, CLI, GraphQL). One record per patient and grantee holds the labels granted; each change rewrites its
 * Consent resource in the aggregated store (a new version) and the resource's access row, in one
 * transaction. Revoking the last label sets it inactive; nothing is ever deleted. Every change, and every
 * refused attempt, leaves an audit event naming who made it (the admin, or the patient's own token); the
 * change is answered only once its event is recorded.
 */
export interface ConsentInput {
  patientId?: unknown;
  grantee?: unknown;
  label?: unknown;
}

interface ConsentRow {
  resource_id: string;
  patient_id: string;
  grantee: string;
  labels: string[];
  status: 'active' | 'inactive';
  updated_at: Date | string;
}

/** Who changes a consent, as the audit log names them; the admin unless told otherwise. */
export type ConsentActor = NonNullable<AuditActivity['caller']>;
const ADMIN: ConsentActor = { clientId: 'admin' };

/**
 * Grantee ids are FHIR ids whose prefix says the kind: `team-…` a CareTeam, `prac-…` a Practitioner. The prefix
 * counts towards the id's 64 characters, hence the lookahead for the whole id.
 */
const BARE_GRANTEE = new RegExp(`^(?=${ID_SOURCE}$)(team|prac)-.`);
const GRANTEE_REFERENCE = new RegExp(`^(?:CareTeam/(?=${ID_SOURCE}$)team|Practitioner/(?=${ID_SOURCE}$)prac)-.`);

/** `CareTeam/team-…`, `Practitioner/prac-…`, or the bare id (its prefix says which). */
export function granteeReference(value: unknown): string {
  const text = typeof value === 'string' ? value.trim() : '';
  const bare = BARE_GRANTEE.exec(text);
  if (bare) return `${bare[1] === 'team' ? 'CareTeam' : 'Practitioner'}/${text}`;
  const ref = GRANTEE_REFERENCE.exec(text);
  if (ref) return text;
  throw badRequest("'grantee' must be a team (CareTeam/team-… or team-…) or a practitioner (Practitioner/prac-… or prac-…)", 'grantee');
}

export function patientIdOf(value: unknown): string {
  const text = typeof value === 'string' ? value.replace(/^Patient\//, '') : '';
  if (!text) throw badRequest("'patientId' is required (an aggregated Patient id)", 'patientId');
  if (!ID.test(text)) throw badRequest("'patientId' is not a FHIR id", 'patientId');
  return text;
}

export function labelOf(value: unknown): string {
  if (!(PRIVACY_LABELS as readonly unknown[]).includes(value)) throw badRequest(`'label' must be one of ${PRIVACY_LABELS.join(', ')}`, 'label');
  return value as string;
}

const record = (row: ConsentRow): ConsentRecord => ({
  id: row.resource_id,
  patientId: row.patient_id,
  grantee: row.grantee,
  labels: [...row.labels].sort(),
  status: row.status,
  dateTime: new Date(row.updated_at).toISOString(),
});

export class ConsentRegistry {
  constructor(
    private readonly sql: SqlClient,
    private readonly repo: ResourceRepository,
    private readonly audit: AuditSink = NO_AUDIT,
    /** Called once a change is committed, before it is answered (a replica's readers must wait for it: store/replicaReads.ts). */
    private readonly onChanged?: () => Promise<void>,
  ) {}

  /** Adds a label to the patient's consent to the grantee (created, or made active again, as needed). */
  grant(input: ConsentInput, by: ConsentActor = ADMIN): Promise<ConsentRecord> {
    return this.audited('consent-grant', input, by, async () => {
      const consent = await this.grantNow(input);
      return { result: consent, consents: [consent] };
    });
  }

  private async grantNow(input: ConsentInput): Promise<ConsentRecord> {
    const patientId = patientIdOf(input.patientId);
    const grantee = granteeReference(input.grantee);
    const label = labelOf(input.label);
    await this.requirePatient(patientId);
    return this.sql.transaction(async (tx) => {
      await tx.execute(
        `INSERT INTO consent (resource_id, patient_id, grantee, labels, status) VALUES ($1, $2, $3, '{}', 'inactive') ON CONFLICT (patient_id, grantee) DO NOTHING`,
        `consent-${randomUUID()}`,
        patientId,
        grantee,
      );
      const [row] = await tx.query<ConsentRow[]>(
        `UPDATE consent SET labels = ARRAY(SELECT DISTINCT unnest(labels || ARRAY[$3::text]) ORDER BY 1), status = 'active', updated_at = clock_timestamp()
          WHERE patient_id = $1 AND grantee = $2 RETURNING *`,
        patientId,
        grantee,
        label,
      );
      return this.publish(tx, row);
    });
  }

  /** Removes a label; with no label left the consent becomes inactive. `revoked` is false when it was not granted. */
  revoke(input: ConsentInput, by: ConsentActor = ADMIN): Promise<{ revoked: boolean; consent?: ConsentRecord }> {
    return this.audited('consent-revoke', input, by, async () => {
      const result = await this.revokeNow(input);
      return { result, consents: result.consent ? [result.consent] : [] };
    });
  }

  private async revokeNow(input: ConsentInput): Promise<{ revoked: boolean; consent?: ConsentRecord }> {
    const patientId = patientIdOf(input.patientId);
    const grantee = granteeReference(input.grantee);
    const label = labelOf(input.label);
    return this.sql.transaction(async (tx) => {
      const [row] = await tx.query<ConsentRow[]>(
        `UPDATE consent SET labels = array_remove(labels, $3::text), updated_at = clock_timestamp(),
                status = CASE WHEN cardinality(array_remove(labels, $3::text)) = 0 THEN 'inactive' ELSE status END
          WHERE patient_id = $1 AND grantee = $2 AND status = 'active' AND $3::text = ANY(labels) RETURNING *`,
        patientId,
        grantee,
        label,
      );
      return row ? { revoked: true, consent: await this.publish(tx, row) } : { revoked: false };
    });
  }

  /** Withdraws all of a patient's sharing at once: every active consent becomes inactive. */
  withdrawAll(patientIdInput: unknown, by: ConsentActor = ADMIN): Promise<ConsentRecord[]> {
    return this.audited('consent-revoke', { patientId: patientIdInput }, by, async () => {
      const consents = await this.withdrawAllNow(patientIdInput);
      return { result: consents, consents };
    });
  }

  private async withdrawAllNow(patientIdInput: unknown): Promise<ConsentRecord[]> {
    const patientId = patientIdOf(patientIdInput);
    return this.sql.transaction(async (tx) => {
      const rows = await tx.query<ConsentRow[]>(
        `UPDATE consent SET status = 'inactive', labels = '{}', updated_at = clock_timestamp() WHERE patient_id = $1 AND status = 'active' RETURNING *`,
        patientId,
      );
      const out: ConsentRecord[] = [];
      for (const row of rows) out.push(await this.publish(tx, row));
      return out;
    });
  }

  async list(filter: { patientId?: unknown; grantee?: unknown } = {}): Promise<ConsentRecord[]> {
    const patientId = filter.patientId === undefined || filter.patientId === null || filter.patientId === '' ? null : patientIdOf(filter.patientId);
    const grantee = filter.grantee === undefined || filter.grantee === null || filter.grantee === '' ? null : granteeReference(filter.grantee);
    const rows = await this.sql.query<ConsentRow[]>(
      `SELECT * FROM consent WHERE ($1::text IS NULL OR patient_id = $1) AND ($2::text IS NULL OR grantee = $2) ORDER BY patient_id, grantee`,
      patientId,
      grantee,
    );
    return rows.map(record);
  }

  /** Freezes (or unfreezes) the patient's own access: while frozen, their self access sees nothing. */
  async setFrozen(patientIdInput: unknown, frozen: unknown, by: ConsentActor = ADMIN): Promise<{ patientId: string; frozen: boolean }> {
    const asked = typeof patientIdInput === 'string' ? patientIdInput.replace(/^Patient\//, '') : '';
    const activity = {
      subtype: 'access-freeze' as const,
      caller: by,
      patients: ID.test(asked) ? [asked] : [],
      entities: [
        {
          type: { system: 'http://terminology.hl7.org/CodeSystem/audit-entity-type', code: '2', display: 'System Object' },
          description: frozen === true ? "the patient's own access frozen" : "the patient's own access unfrozen",
          detail: [{ type: 'frozen', valueString: String(frozen) }],
        },
      ],
    };
    try {
      const settings = await this.setFrozenNow(patientIdInput, frozen);
      await this.audit.record(activity);
      return settings;
    } catch (err) {
      if (err instanceof OperationOutcomeError) await this.audit.record({ ...activity, status: err.status, detail: err.message });
      throw err;
    }
  }

  private async setFrozenNow(patientIdInput: unknown, frozen: unknown): Promise<{ patientId: string; frozen: boolean }> {
    const patientId = patientIdOf(patientIdInput);
    if (typeof frozen !== 'boolean') throw badRequest("'frozen' must be true or false", 'frozen');
    await this.sql.execute(
      `INSERT INTO patient_access (patient_id, frozen) VALUES ($1, $2) ON CONFLICT (patient_id) DO UPDATE SET frozen = $2, updated_at = clock_timestamp()`,
      patientId,
      frozen,
    );
    return { patientId, frozen };
  }

  async accessSettings(patientIdInput: unknown): Promise<{ patientId: string; frozen: boolean }> {
    const patientId = patientIdOf(patientIdInput);
    const rows = await this.sql.query<{ frozen: boolean }[]>(`SELECT frozen FROM patient_access WHERE patient_id = $1`, patientId);
    return { patientId, frozen: rows[0]?.frozen ?? false };
  }

  /**
   * Runs a change and records it: the Consent resources it wrote (their new versions), the patient, and the
   * grantee and label asked for; a refused change (bad input, unknown patient) is recorded with its outcome.
   */
  private async audited<T>(
    subtype: 'consent-grant' | 'consent-revoke',
    input: ConsentInput,
    by: ConsentActor,
    change: () => Promise<{ result: T; consents: ConsentRecord[] }>,
  ): Promise<T> {
    const asked = typeof input.patientId === 'string' ? input.patientId.replace(/^Patient\//, '') : undefined;
    const detail = [
      ...(typeof input.grantee === 'string' ? [{ type: 'grantee', valueString: input.grantee }] : []),
      ...(typeof input.label === 'string' ? [{ type: 'label', valueString: input.label }] : []),
    ];
    const entities = detail.length
      ? [
          {
            type: { system: 'http://terminology.hl7.org/CodeSystem/audit-entity-type', code: '2', display: 'System Object' },
            role: { system: 'http://terminology.hl7.org/CodeSystem/object-role', code: '4', display: 'Domain Resource' },
            description: [typeof input.label === 'string' ? `label '${input.label}'` : 'every label', typeof input.grantee === 'string' ? `to ${input.grantee}` : '']
              .join(' ')
              .trim(),
            detail,
          },
        ]
      : [];
    const patients = asked && ID.test(asked) ? [asked] : [];
    let done: { result: T; consents: ConsentRecord[] };
    try {
      done = await change();
    } catch (err) {
      if (err instanceof OperationOutcomeError) {
        await this.audit.record({ subtype, caller: by, patients, entities, status: err.status, detail: err.message });
      }
      throw err;
    }
    await this.onChanged?.();
    await this.audit.record({
      subtype,
      caller: by,
      store: AGGREGATED_STORE,
      patients,
      resources: done.consents.map((c) => ({ type: 'Consent', id: c.id })),
      entities,
    });
    return done.result;
  }

  private async requirePatient(patientId: string): Promise<void> {
    const found = await this.repo.find(AGGREGATED_STORE, 'Patient', patientId);
    if (!found || found.deleted) throw notFound(`Patient/${patientId} is not in the aggregated record`);
  }

  /** Writes the record's Consent resource (a new version) and its access row: the patient and the grantee see it. */
  private async publish(tx: Tx, row: ConsentRow): Promise<ConsentRecord> {
    const consent = record(row);
    const { stored } = await this.repo.update(AGGREGATED_STORE, consentResource(consent) as Parameters<ResourceRepository['update']>[1], {}, tx);
    await tx.execute(
      `INSERT INTO agg_access (resource_pk, kind, patient_id, grantee) VALUES ($1::bigint, 'consent', $2, $3)
       ON CONFLICT (resource_pk) DO UPDATE SET kind = 'consent', patient_id = $2, grantee = $3, source_org = NULL, source_customers = '{}', label = NULL`,
      String(stored.pk),
      consent.patientId,
      consent.grantee,
    );
    return consent;
  }
}
