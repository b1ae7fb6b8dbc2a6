import type { Caller } from '../access/caller';
import { requireScope } from '../access/scopeGuard';
import type { Permission } from '../access/scopes';
import { badRequest, notFound, OperationOutcomeError, unprocessable } from '../fhir/outcome';
import type { AuditSink } from '../audit/auditLog';
import type { Resource } from '../fhir/types';
import type { ResourceRepository } from '../store/resourceRepository';
import type { SqlClient, Tx } from '../store/sql';
import { newId } from '../store/newId';
import type { InvitationOutbox } from './invitationMailer';
import { checkAnswers, checkEntry, checkLetter, checkPatient, checkQuestionnaire, type EntryInput, type PatientInput } from './nativeInput';
import type { EntryKind, NativeEntry, NativeLetter, NativePatient, NativeQuestionnaire, NativeQuestionnaireResponse } from './nativeModel';
import { NativeRepository } from './nativeRepository';
import { type DemographicsMessage, TEAM_ALIAS_EXTENSION } from '../messaging/demographicsMessage';
import { ensureNativeStore, nativeStoreOf, type WritingOrganization } from './nativeStore';
import { entryToR4, letterToR4, patientToR4, questionnaireResponseToR4, questionnaireToR4 } from './nativeToR4';

/**
 * One organisation's native record, for one caller (issue 14): the operations the web UI (GraphQL), the
 * demographics `$process-message` and the import command perform. Made only by the authorisation point
 * (src/service/authorization.ts), which checked the caller acts for `organization`; each operation checks the
 * caller's SMART scopes on the R4 type it writes or reads (a timeline measurement is an Observation, …).
 *
 * Every change runs in one transaction that writes the native row and the R4 resource it maps to into the
 * organisation's native store (nativeStore.ts), whose write hooks enqueue it for the aggregator: the native
 * record is one more source of the aggregated record, tagged with the organisation as its source.
 */
export interface NativeDeps {
  sql: SqlClient;
  repo: ResourceRepository;
  invitations: InvitationOutbox;
  /** Called after each committed change (wakes the in-process aggregation worker). */
  onChange?: () => void;
  /** The audit log: every change (and every refused one) is recorded with the R4 resources it wrote. */
  audit?: AuditSink;
}

export interface SavedPatient {
  patient: NativePatient;
  created: boolean;
  /** Whether a registration invitation was queued by this save (false on a retry). */
  invited: boolean;
  /** The R4 Patient as stored in the native store (with its version). */
  resource: Resource;
}

const ENTRY_TYPE: Record<EntryKind, string> = { appointment: 'Appointment', note: 'DocumentReference', measurement: 'Observation' };

export class NativeRecord {
  private readonly rows: NativeRepository;

  constructor(
    private readonly deps: NativeDeps,
    readonly organization: WritingOrganization,
    private readonly caller: Caller,
  ) {
    this.rows = new NativeRepository(organization.id);
  }

  private allow(type: string, ...permissions: Permission[]): void {
    requireScope(this.caller, type, ...permissions);
  }

  /** Runs `fn` in one transaction with the organisation's native store ready; flushes invitations after commit. */
  private async change<T>(fn: (tx: Tx, write: (resource: Resource & { id: string }) => Promise<Resource>) => Promise<T>): Promise<T> {
    const written: { type: string; id: string; versionId: number; created: boolean }[] = [];
    const store = nativeStoreOf(this.organization.id);
    let result: T;
    try {
      result = await this.deps.sql.transaction(async (tx) => {
        await ensureNativeStore(tx, this.deps.repo, this.organization);
        written.length = 0;
        return fn(tx, async (resource) => {
          // Unchanged content is no new version (and no aggregation work): a retried message changes nothing.
          const current = await this.deps.repo.find(store, resource.resourceType, resource.id, tx);
          if (current && !current.deleted && current.resource && sameContent(current.resource, resource)) return current.resource;
          const { stored, created } = await this.deps.repo.update(store, resource, {}, tx);
          written.push({ type: stored.type, id: stored.id, versionId: stored.versionId, created });
          return stored.resource as Resource;
        });
      });
    } catch (err) {
      if (this.deps.audit?.enabled) {
        const status = err instanceof OperationOutcomeError ? err.status : 500;
        await this.deps.audit.record({ subtype: 'create', caller: this.caller, store, status, detail: (err as Error).message });
      }
      throw err;
    }
    this.deps.onChange?.();
    if (this.deps.audit?.enabled && written.length) {
      await this.deps.audit.record({
        subtype: written.every((w) => w.created) ? 'create' : 'update',
        caller: this.caller,
        store,
        resources: written.map(({ type, id, versionId }) => ({ type, id, versionId })),
        status: 200,
      });
    }
    return result;
  }

  private async requirePatient(sql: SqlClient | Tx, id: string, field = 'patientId'): Promise<NativePatient> {
    const patient = await this.rows.patient(sql, id);
    if (!patient) throw notFound(`No patient '${id}' in the native record of this organisation (${field})`);
    return patient;
  }

  // --- demographics and teams

  /**
   * Creates the patient, or updates the organisation's patient of the same NHS number. `teamIds` are added
   * (never removed); an email address queues one registration invitation per address.
   */
  async savePatient(input: PatientInput, options: { teamIds?: string[]; invite?: boolean; at?: string } = {}): Promise<SavedPatient> {
    this.allow('Patient', 'c', 'u');
    const checked = checkPatient(input, options.at);
    const teamIds = [...new Set(options.teamIds ?? [])];
    const saved = await this.change(async (tx, write) => {
      if (teamIds.length) {
        const known = await this.rows.teams(tx, teamIds);
        const unknown = teamIds.filter((t) => !known.has(t));
        if (unknown.length) throw unprocessable(`No team '${unknown[0]}' in this organisation`, 'teamIds');
      }
      const { id, created } = await this.rows.upsertPatient(tx, newId('npat'), checked);
      await this.rows.addTeams(tx, id, teamIds);
      const invited = options.invite !== false && checked.email !== null ? await this.rows.queueInvitation(tx, newId('inv'), id, checked.email) : false;
      const patient = (await this.rows.patient(tx, id)) as NativePatient;
      const resource = await write(patientToR4(patient));
      return { patient, created, invited, resource };
    });
    if (saved.invited) await this.deps.invitations.flush();
    return saved;
  }

  /**
   * A demographics `$process-message` (src/messaging/): its team aliases must name teams of the sending
   * organisation, one of them its default team (422 otherwise); then the patient is saved as above. A retry
   * changes nothing: same row, same memberships, no second invitation, no new version of the R4 Patient.
   */
  async receiveDemographics(message: DemographicsMessage): Promise<SavedPatient> {
    this.allow('Patient', 'c', 'u');
    const defaultTeam = this.organization.defaultTeamId;
    if (!defaultTeam) throw unprocessable('The sending organisation has no default team, which every patient it sends must join', 'Patient.extension');
    if (!message.teamAliases.length)
      throw unprocessable(`A team-alias extension (${TEAM_ALIAS_EXTENSION}) naming the sending organisation's default team is required`, 'Patient.extension');
    const teamIds = await this.teamsByAlias(message.teamAliases, 'Patient.extension');
    if (!teamIds.includes(defaultTeam)) throw unprocessable("None of the team-alias extensions names the sending organisation's default team", 'Patient.extension');
    return this.savePatient(message.patient, { teamIds, at: 'Patient.' });
  }

  async addPatientToTeams(patientId: string, teamIds: string[]): Promise<NativePatient> {
    this.allow('Patient', 'u');
    if (!teamIds.length) throw badRequest("'teamIds' needs at least one team", 'teamIds');
    return this.change(async (tx) => {
      await this.requirePatient(tx, patientId);
      const known = await this.rows.teams(tx, teamIds);
      const unknown = teamIds.filter((t) => !known.has(t));
      if (unknown.length) throw unprocessable(`No team '${unknown[0]}' in this organisation`, 'teamIds');
      await this.rows.addTeams(tx, patientId, teamIds);
      return (await this.rows.patient(tx, patientId)) as NativePatient;
    });
  }

  /** Team ids of the organisation's teams by alias; 422 naming the first unknown alias. */
  async teamsByAlias(aliases: string[], where: string): Promise<string[]> {
    const found = await this.rows.teamsByAlias(this.deps.sql, aliases);
    const unknown = aliases.find((a) => !found.has(a));
    if (unknown !== undefined) throw unprocessable(`No team with alias '${unknown}' in the sending organisation`, where);
    return aliases.map((a) => found.get(a) as string);
  }

  async patient(id: string): Promise<NativePatient | undefined> {
    this.allow('Patient', 'r');
    return this.rows.patient(this.deps.sql, id);
  }

  async patients(options: { nhsNumber?: string; limit?: number } = {}): Promise<NativePatient[]> {
    this.allow('Patient', 's');
    if (options.nhsNumber !== undefined) {
      const one = await this.rows.patientByNhsNumber(this.deps.sql, options.nhsNumber.replace(/\s/g, ''));
      return one ? [one] : [];
    }
    return this.rows.patients(this.deps.sql, Math.min(Math.max(options.limit ?? 100, 1), 1000));
  }

  // --- timeline

  async addEntry(input: EntryInput): Promise<NativeEntry> {
    const checked = checkEntry(input);
    this.allow(ENTRY_TYPE[checked.kind], 'c');
    return this.change(async (tx, write) => {
      await this.requirePatient(tx, checked.patientId);
      const entry = await this.rows.insertEntry(tx, newId('nent'), checked);
      await write(entryToR4(entry));
      return entry;
    });
  }

  /**
   * Many entries in one transaction (the import command): all or nothing. An entry names its patient by
   * `patientId` or by `nhsNumber`; `at(i)` names the input's place in a refusal (e.g. `entries[12].`), so
   * the importer can set that one aside and send the rest again.
   */
  async addEntries(inputs: (EntryInput & { nhsNumber?: string | null })[], at: (index: number) => string): Promise<NativeEntry[]> {
    return this.change(async (tx, write) => {
      const resolved: EntryInput[] = [];
      for (const [i, input] of inputs.entries()) {
        const { nhsNumber, ...entry } = input;
        if (entry.patientId) {
          if (!(await this.rows.patient(tx, entry.patientId))) throw badRequest(`No patient '${entry.patientId}' in the native record of this organisation`, `${at(i)}patientId`);
        } else if (nhsNumber) {
          const patient = await this.rows.patientByNhsNumber(tx, nhsNumber.replace(/\s/g, ''));
          if (!patient) throw badRequest(`No patient with NHS number '${nhsNumber}' in the native record of this organisation`, `${at(i)}nhsNumber`);
          entry.patientId = patient.id;
        } else {
          throw badRequest("An entry needs 'patientId' or 'nhsNumber'", `${at(i)}patientId`);
        }
        resolved.push(entry);
      }
      const checked = resolved.map((input, i) => checkEntry(input, at(i)));
      for (const kind of new Set(checked.map((c) => c.kind))) this.allow(ENTRY_TYPE[kind], 'c');
      const out: NativeEntry[] = [];
      for (const c of checked) {
        const entry = await this.rows.insertEntry(tx, newId('nent'), c);
        await write(entryToR4(entry));
        out.push(entry);
      }
      return out;
    });
  }

  async timeline(patientId: string, kind?: EntryKind): Promise<NativeEntry[]> {
    for (const type of kind ? [ENTRY_TYPE[kind]] : Object.values(ENTRY_TYPE)) this.allow(type, 's');
    return this.rows.entries(this.deps.sql, patientId, kind);
  }

  // --- questionnaires

  async createQuestionnaire(input: { title: string; items: { linkId: string; text: string; type?: string | null }[] }): Promise<NativeQuestionnaire> {
    this.allow('Questionnaire', 'c');
    const checked = checkQuestionnaire(input);
    return this.change(async (tx, write) => {
      const questionnaire = await this.rows.insertQuestionnaire(tx, newId('nq'), checked.title, checked.items);
      await write(questionnaireToR4(questionnaire));
      return questionnaire;
    });
  }

  async questionnaires(): Promise<NativeQuestionnaire[]> {
    this.allow('Questionnaire', 's');
    return this.rows.questionnaires(this.deps.sql);
  }

  async answerQuestionnaire(input: { questionnaireId: string; patientId: string; answers: { linkId: string; value: string }[] }): Promise<NativeQuestionnaireResponse> {
    this.allow('QuestionnaireResponse', 'c');
    return this.change(async (tx, write) => {
      const questionnaire = await this.rows.questionnaire(tx, input.questionnaireId);
      if (!questionnaire) throw notFound(`No questionnaire '${input.questionnaireId}' in this organisation (questionnaireId)`);
      await this.requirePatient(tx, input.patientId);
      const answers = checkAnswers(questionnaire.items, input.answers);
      const response = await this.rows.insertResponse(tx, newId('nqr'), questionnaire.id, input.patientId, answers);
      await write(questionnaireResponseToR4(response, questionnaire));
      return response;
    });
  }

  async questionnaireResponses(patientId: string): Promise<NativeQuestionnaireResponse[]> {
    this.allow('QuestionnaireResponse', 's');
    return this.rows.responses(this.deps.sql, patientId);
  }

  // --- hybrid mail

  async sendLetter(input: { patientId: string; subject: string; body: string }): Promise<NativeLetter> {
    this.allow('Communication', 'c');
    const checked = checkLetter(input);
    return this.change(async (tx, write) => {
      await this.requirePatient(tx, checked.patientId);
      const letter = await this.rows.insertLetter(tx, newId('nlet'), checked.patientId, checked.subject, checked.body);
      await write(letterToR4(letter));
      return letter;
    });
  }

  /** The read receipt; reading again keeps the first time and writes nothing. */
  async markLetterRead(id: string): Promise<NativeLetter> {
    this.allow('Communication', 'u');
    return this.change(async (tx, write) => {
      const marked = await this.rows.markLetterRead(tx, id);
      if (!marked) throw notFound(`No letter '${id}' in this organisation`);
      if (marked.changed) await write(letterToR4(marked.letter));
      return marked.letter;
    });
  }

  async letters(patientId: string): Promise<NativeLetter[]> {
    this.allow('Communication', 's');
    return this.rows.letters(this.deps.sql, patientId);
  }
}

/** Equal apart from `meta.versionId`/`lastUpdated` and key order. */
function sameContent(stored: Resource, next: Resource): boolean {
  const canonical = (r: Resource): string => {
    const { meta, ...rest } = r as Resource & { meta?: Record<string, unknown> };
    const { versionId: _v, lastUpdated: _l, ...keptMeta } = meta ?? {};
    return stableJson({ ...rest, ...(Object.keys(keptMeta).length ? { meta: keptMeta } : {}) });
  };
  return canonical(stored) === canonical(next);
}

function stableJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(',')}]`;
  if (value && typeof value === 'object') {
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${stableJson((value as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}
