import type { Sql } from '../store/sql';
import type { CheckedEntry, CheckedPatient } from './nativeInput';
import type {
  EntryKind,
  Gender,
  NativeAddress,
  NativeAnswer,
  NativeEntry,
  NativeLetter,
  NativePatient,
  NativeQuestion,
  NativeQuestionnaire,
  NativeQuestionnaireResponse,
} from './nativeModel';

/**
 * The native record's tables (migration 20261205200000_native_record), as plain SQL: every read is scoped to
 * one organisation, and every write runs in the caller's transaction (the one that also writes the mapped R4
 * resource), so a row and its resource commit together.
 */
type Row = Record<string, unknown>;

const iso = (d: unknown) => (d instanceof Date ? d : new Date(String(d)));

function toPatient(r: Row): NativePatient {
  return {
    id: r.id as string,
    organizationId: r.organization_id as string,
    nhsNumber: r.nhs_number as string,
    family: r.family as string,
    given: r.given as string[],
    birthDate: (r.birth_date as string | null) ?? null,
    gender: (r.gender as Gender | null) ?? null,
    address: (r.address as NativeAddress | null) ?? null,
    phone: (r.phone as string | null) ?? null,
    email: (r.email as string | null) ?? null,
    teamIds: ((r.team_ids as string[] | null) ?? []).filter((t) => t !== null),
    updatedAt: iso(r.updated_at),
  };
}

function toEntry(r: Row): NativeEntry {
  return {
    id: r.id as string,
    patientId: r.patient_id as string,
    organizationId: r.organization_id as string,
    kind: r.kind as EntryKind,
    occurredAt: iso(r.occurred_at),
    endsAt: r.ends_at ? iso(r.ends_at) : null,
    title: (r.title as string | null) ?? null,
    text: (r.text as string | null) ?? null,
    status: (r.status as string | null) ?? null,
    codeSystem: (r.code_system as string | null) ?? null,
    code: (r.code as string | null) ?? null,
    codeDisplay: (r.code_display as string | null) ?? null,
    value: (r.value as string | null) ?? null,
    unit: (r.unit as string | null) ?? null,
    privacyLabel: r.privacy_label as string,
    updatedAt: iso(r.updated_at),
  };
}

const toQuestionnaire = (r: Row): NativeQuestionnaire => ({
  id: r.id as string,
  organizationId: r.organization_id as string,
  title: r.title as string,
  items: r.items as NativeQuestion[],
  createdAt: iso(r.created_at),
});

const toResponse = (r: Row): NativeQuestionnaireResponse => ({
  id: r.id as string,
  questionnaireId: r.questionnaire_id as string,
  patientId: r.patient_id as string,
  organizationId: r.organization_id as string,
  answers: r.answers as NativeAnswer[],
  authoredAt: iso(r.authored_at),
});

const toLetter = (r: Row): NativeLetter => ({
  id: r.id as string,
  patientId: r.patient_id as string,
  organizationId: r.organization_id as string,
  subject: r.subject as string,
  body: r.body as string,
  sentAt: iso(r.sent_at),
  readAt: r.read_at ? iso(r.read_at) : null,
});

const PATIENT = `SELECT p.*, ARRAY(SELECT m.team_id FROM native_team_member m WHERE m.patient_id = p.id ORDER BY m.created_at, m.team_id) AS team_ids FROM native_patient p`;

export class NativeRepository {
  constructor(private readonly organizationId: string) {}

  async patient(sql: Sql, id: string): Promise<NativePatient | undefined> {
    const rows = await sql.query<Row[]>(`${PATIENT} WHERE p.organization_id = $1 AND p.id = $2`, this.organizationId, id);
    return rows[0] && toPatient(rows[0]);
  }

  async patientByNhsNumber(sql: Sql, nhsNumber: string, lock = false): Promise<NativePatient | undefined> {
    const rows = await sql.query<Row[]>(`${PATIENT} WHERE p.organization_id = $1 AND p.nhs_number = $2${lock ? ' FOR UPDATE' : ''}`, this.organizationId, nhsNumber);
    return rows[0] && toPatient(rows[0]);
  }

  async patients(sql: Sql, limit: number): Promise<NativePatient[]> {
    const rows = await sql.query<Row[]>(`${PATIENT} WHERE p.organization_id = $1 ORDER BY p.family, p.id LIMIT $2`, this.organizationId, limit);
    return rows.map(toPatient);
  }

  /**
   * Creates the patient, or updates the one of the same NHS number: keyed on the unique index, so two
   * concurrent saves of a new patient end as one row. Returns the row and whether it was created.
   */
  async upsertPatient(tx: Sql, id: string, p: CheckedPatient): Promise<{ id: string; created: boolean }> {
    const rows = await tx.query<{ id: string; created: boolean }[]>(
      `INSERT INTO native_patient (id, organization_id, nhs_number, family, given, birth_date, gender, address, phone, email)
       VALUES ($1, $2, $3, $4, $5::text[], $6, $7, $8::jsonb, $9, $10)
       ON CONFLICT (organization_id, nhs_number) DO UPDATE SET family = EXCLUDED.family, given = EXCLUDED.given, birth_date = EXCLUDED.birth_date,
         gender = EXCLUDED.gender, address = EXCLUDED.address, phone = EXCLUDED.phone, email = EXCLUDED.email, updated_at = CURRENT_TIMESTAMP
       RETURNING id, (xmax = 0) AS created`,
      id,
      this.organizationId,
      p.nhsNumber,
      p.family,
      p.given,
      p.birthDate,
      p.gender,
      p.address === null ? null : JSON.stringify(p.address),
      p.phone,
      p.email,
    );
    return rows[0];
  }

  /** Adds memberships; returns how many were new. */
  async addTeams(tx: Sql, patientId: string, teamIds: string[]): Promise<number> {
    if (!teamIds.length) return 0;
    return tx.execute(`INSERT INTO native_team_member (patient_id, team_id) SELECT $1, t FROM unnest($2::text[]) AS t ON CONFLICT DO NOTHING`, patientId, teamIds);
  }

  /** The organisation's teams among `ids` that are not disabled, id → alias. */
  async teams(sql: Sql, ids: string[]): Promise<Set<string>> {
    const rows = await sql.query<{ id: string }[]>(`SELECT id FROM team WHERE organization_id = $1 AND id = ANY($2::text[]) AND disabled_at IS NULL`, this.organizationId, ids);
    return new Set(rows.map((r) => r.id));
  }

  async teamsByAlias(sql: Sql, aliases: string[]): Promise<Map<string, string>> {
    const rows = await sql.query<{ id: string; alias: string }[]>(
      `SELECT id, alias FROM team WHERE organization_id = $1 AND alias = ANY($2::text[]) AND disabled_at IS NULL`,
      this.organizationId,
      aliases,
    );
    return new Map(rows.map((r) => [r.alias, r.id]));
  }

  async insertEntry(tx: Sql, id: string, e: CheckedEntry): Promise<NativeEntry> {
    const rows = await tx.query<Row[]>(
      `INSERT INTO native_entry (id, patient_id, organization_id, kind, occurred_at, ends_at, title, text, status, code_system, code, code_display, value, unit, privacy_label)
       VALUES ($1, $2, $3, $4, $5::timestamptz, $6::timestamptz, $7, $8, $9, $10, $11, $12, $13, $14, $15) RETURNING *`,
      id,
      e.patientId,
      this.organizationId,
      e.kind,
      e.occurredAt.toISOString(),
      e.endsAt?.toISOString() ?? null,
      e.title,
      e.text,
      e.status,
      e.codeSystem,
      e.code,
      e.codeDisplay,
      e.value,
      e.unit,
      e.privacyLabel,
    );
    return toEntry(rows[0]);
  }

  async entries(sql: Sql, patientId: string, kind?: EntryKind): Promise<NativeEntry[]> {
    const rows = await sql.query<Row[]>(
      `SELECT * FROM native_entry WHERE organization_id = $1 AND patient_id = $2 AND ($3::text IS NULL OR kind = $3) ORDER BY occurred_at DESC, id`,
      this.organizationId,
      patientId,
      kind ?? null,
    );
    return rows.map(toEntry);
  }

  async insertQuestionnaire(tx: Sql, id: string, title: string, items: NativeQuestion[]): Promise<NativeQuestionnaire> {
    const rows = await tx.query<Row[]>(
      `INSERT INTO native_questionnaire (id, organization_id, title, items) VALUES ($1, $2, $3, $4::jsonb) RETURNING *`,
      id,
      this.organizationId,
      title,
      JSON.stringify(items),
    );
    return toQuestionnaire(rows[0]);
  }

  async questionnaire(sql: Sql, id: string): Promise<NativeQuestionnaire | undefined> {
    const rows = await sql.query<Row[]>(`SELECT * FROM native_questionnaire WHERE organization_id = $1 AND id = $2`, this.organizationId, id);
    return rows[0] && toQuestionnaire(rows[0]);
  }

  async questionnaires(sql: Sql): Promise<NativeQuestionnaire[]> {
    const rows = await sql.query<Row[]>(`SELECT * FROM native_questionnaire WHERE organization_id = $1 ORDER BY created_at, id`, this.organizationId);
    return rows.map(toQuestionnaire);
  }

  async insertResponse(tx: Sql, id: string, questionnaireId: string, patientId: string, answers: NativeAnswer[]): Promise<NativeQuestionnaireResponse> {
    const rows = await tx.query<Row[]>(
      `INSERT INTO native_questionnaire_answer (id, questionnaire_id, patient_id, organization_id, answers) VALUES ($1, $2, $3, $4, $5::jsonb) RETURNING *`,
      id,
      questionnaireId,
      patientId,
      this.organizationId,
      JSON.stringify(answers),
    );
    return toResponse(rows[0]);
  }

  async responses(sql: Sql, patientId: string): Promise<NativeQuestionnaireResponse[]> {
    const rows = await sql.query<Row[]>(
      `SELECT * FROM native_questionnaire_answer WHERE organization_id = $1 AND patient_id = $2 ORDER BY authored_at DESC, id`,
      this.organizationId,
      patientId,
    );
    return rows.map(toResponse);
  }

  async insertLetter(tx: Sql, id: string, patientId: string, subject: string, body: string): Promise<NativeLetter> {
    const rows = await tx.query<Row[]>(
      `INSERT INTO native_letter (id, patient_id, organization_id, subject, body) VALUES ($1, $2, $3, $4, $5) RETURNING *`,
      id,
      patientId,
      this.organizationId,
      subject,
      body,
    );
    return toLetter(rows[0]);
  }

  /** Records the read receipt once: a second read keeps the first time. */
  async markLetterRead(tx: Sql, id: string): Promise<{ letter: NativeLetter; changed: boolean } | undefined> {
    const changed = await tx.execute(`UPDATE native_letter SET read_at = CURRENT_TIMESTAMP WHERE organization_id = $1 AND id = $2 AND read_at IS NULL`, this.organizationId, id);
    const rows = await tx.query<Row[]>(`SELECT * FROM native_letter WHERE organization_id = $1 AND id = $2`, this.organizationId, id);
    return rows[0] && { letter: toLetter(rows[0]), changed: changed > 0 };
  }

  async letters(sql: Sql, patientId: string): Promise<NativeLetter[]> {
    const rows = await sql.query<Row[]>(`SELECT * FROM native_letter WHERE organization_id = $1 AND patient_id = $2 ORDER BY sent_at DESC, id`, this.organizationId, patientId);
    return rows.map(toLetter);
  }

  /** Queues a registration invitation unless one for this patient and address exists; true when queued now. */
  async queueInvitation(tx: Sql, id: string, patientId: string, email: string): Promise<boolean> {
    const n = await tx.execute(
      `INSERT INTO native_invitation (id, organization_id, patient_id, email) VALUES ($1, $2, $3, $4) ON CONFLICT (patient_id, email) DO NOTHING`,
      id,
      this.organizationId,
      patientId,
      email,
    );
    return n > 0;
  }
}
