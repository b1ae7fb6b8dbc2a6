import { randomUUID } from 'node:crypto';
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { once } from 'node:events';
import { badRequest, notFound, type OperationOutcome } from '../fhir/outcome';
import type { ExportJob, ExportJobRepository, ExportOutput } from '../store/exportJobRepository';
import type { FhirService } from './fhirService';
import { parseQuery } from './fhirService';
import { currentPatientMembers } from '../fhir/groupMembers';
import { replacedByOutcome } from './survivingPatients';

/**
 * FHIR Bulk Data Access export (https://hl7.org/fhir/uv/bulkdata/export.html) over the aggregated record.
 * A kick-off (by GET or POST: the same parameters) is checked at once (types, scopes, `_since`, `_typeFilter`,
 * `patient`), recorded as a job row, and run in this process through the caller's own `FhirService`, so every
 * row is access-filtered like a search. The export walks each type in pages and appends NDJSON to files under
 * `DATA_DIR/exports/<job>/` (mode 0600); as it goes it records progress, which is also how it notices a
 * cancellation (the row is no longer in progress) and stops. Status, files and cancellation are answered from
 * the row by any process.
 *
 * Speed (issue 19 item 5): each type is one walk of a cursor, in pages of a few thousand rows whose lines
 * PostgreSQL writes as text (the stored jsonb's own text, store/servedJsonText.ts), so nothing is parsed or
 * serialised here; the next page is read while one is written, and two types run at once, one database
 * connection each.
 */
export interface ExportRequest {
  /** The kick-off URL, echoed in the manifest's `request`. */
  url: string;
  /**
   * The kick-off parameters in order, from a GET's query or a POST's Parameters body (fhir/exportParameters.ts);
   * `patient`'s value is `Patient/[id]`.
   */
  parameters: [string, string][];
  /** `Prefer: handling`: whether a parameter this server does not support is a 400 (strict) or ignored. */
  handling: 'strict' | 'lenient';
  /** The endpoint's base URL (searches' links). */
  baseUrl: string;
  /** `system` ([base]/$export), `patient` (Patient/$export) or `group` (Group/[group]/$export). */
  level: 'system' | 'patient' | 'group';
  /** The Group's id, at `group` level. */
  group?: string;
}

/** Whose compartments an export walks: every patient's, some patients' (and their Group), or none (system level). */
type Population = { patients?: string[] | 'all'; group?: string };

export interface BulkExportOptions {
  jobs: ExportJobRepository;
  /** Root folder of job files: `DATA_DIR/exports`. */
  directory: string;
  /** How long a job and its files are kept after the kick-off. */
  ttlHours: number;
  /** Resources per page read from the store (default 5000). */
  pageSize?: number;
  /** Types exported at the same time, each on a database connection of its own (default 2). */
  parallelTypes?: number;
}

const NDJSON_FORMATS = new Set(['application/fhir+ndjson', 'application/ndjson', 'ndjson']);
/** The kick-off parameters this export honours (bulkdata export.html#query-parameters). */
const SUPPORTED_PARAMETERS = new Set(['_outputFormat', '_since', '_type', '_typeFilter', 'patient']);
/** Defined by the IG but not supported here: a 400 under `Prefer: handling=strict`, ignored otherwise, as the IG allows. */
const UNSUPPORTED_PARAMETERS = new Set(['_elements', 'includeAssociatedData']);
/**
 * The job file of the export's messages, listed in the manifest's `error` (bulkdata export.html: "Only the
 * OperationOutcome resource type is currently supported"). Type files are named after their type, and no
 * type is named `messages`.
 */
const MESSAGES_FILE = 'messages.ndjson';

/** A completed job's files as its manifest lists them: the resources (`output`) and the messages (`error`). */
export function manifestFiles(job: ExportJob): { output: ExportOutput[]; error: ExportOutput[] } {
  return { output: job.output.filter((o) => o.file !== MESSAGES_FILE), error: job.output.filter((o) => o.file === MESSAGES_FILE) };
}

export class BulkExport {
  private readonly running = new Set<Promise<void>>();

  constructor(private readonly options: BulkExportOptions) {}

  /** Checks and records a kick-off and starts the export; answers the job id. */
  async kickOff(service: FhirService, supported: ReadonlySet<string>, request: ExportRequest): Promise<string> {
    for (const [name] of request.parameters) {
      if (SUPPORTED_PARAMETERS.has(name) || request.handling !== 'strict') continue;
      if (UNSUPPORTED_PARAMETERS.has(name)) throw badRequest(`$export does not support ${name} here (Prefer: handling=strict)`, name);
      throw badRequest(`$export has no parameter '${name}' (Prefer: handling=strict)`, name);
    }
    const get = (name: string) => request.parameters.filter(([k]) => k === name).map(([, v]) => v);
    const format = get('_outputFormat')[0];
    if (format !== undefined && !NDJSON_FORMATS.has(format)) throw badRequest(`_outputFormat '${format}' is not supported; use application/fhir+ndjson`, '_outputFormat');
    const sinceText = get('_since')[0];
    const since = sinceText === undefined ? undefined : new Date(sinceText);
    if (since && Number.isNaN(since.getTime())) throw badRequest(`_since must be an instant, got '${sinceText}'`, '_since');
    const listed = get('_type')
      .flatMap((v) => v.split(','))
      .map((t) => t.trim())
      .filter((t) => t !== '');
    for (const t of listed) if (!supported.has(t)) throw badRequest(`_type '${t}' is not part of the aggregated record`, '_type');
    const types = listed.length ? [...new Set(listed)] : [...supported].sort();
    const filters: Record<string, [string, string][][]> = {};
    for (const text of get('_typeFilter')) {
      const q = text.indexOf('?');
      const type = q < 0 ? '' : text.slice(0, q);
      if (!types.includes(type)) throw badRequest(`_typeFilter '${text}' must be [type]?[query] for an exported type`, '_typeFilter');
      (filters[type] ??= []).push(parseQuery(text.slice(q + 1), '_typeFilter'));
    }
    const patients = [...new Set(get('patient').map((reference) => reference.slice('Patient/'.length)))];
    const { population, messages } = await this.population(service, request, patients);
    // Every type, unlisted: like a system-wide search, the caller must be able to search something.
    if (!listed.length) service.requireSomeSearch();
    // Scopes, unknown filter parameters and the like are refused now, not discovered by a failed job.
    const listedOnly = listed.length > 0;
    for (const type of types) {
      if (listedOnly || filters[type]) await service.exportText({ types: [type], listed: true, filters, since, ...population, pageSize: 1 }, async () => false);
    }
    await this.sweep();
    const id = randomUUID();
    const transactionTime = new Date();
    await this.options.jobs.create({
      id,
      clientId: service.binding.caller.clientId,
      request: request.url,
      transactionTime,
      expiresAt: new Date(transactionTime.getTime() + this.options.ttlHours * 3_600_000),
    });
    const run = this.run(id, service, { types, listed: listedOnly, filters, ...population, since }, messages).finally(() => this.running.delete(run));
    this.running.add(run);
    return id;
  }

  /**
   * A Group-level export holds the compartments of the Group's members at kick-off (fhir/groupMembers.ts),
   * read as the caller reads the Group: it needs `r` on Group, and a Group the caller may not see is a 404,
   * the answer for one that does not exist. Members the caller may not see add nothing: every row of the
   * export is access-filtered.
   *
   * `patient` (Patient and Group level) narrows that to the patients it names (the IG: "SHALL NOT return
   * resources in the patient compartments belonging to patients outside of this list"). They are read as the
   * caller reads them, so it needs `r` on Patient, and one the caller may not see is the 400 of one that does
   * not exist ("not present on the server": the IG's error). At Group level a patient who is not a current
   * member is a 400 too (the IG's "not members of the group"): the caller can read the Group, so that says
   * nothing it could not see.
   *
   * A patient id absorbed by a merge stands for the surviving Patient (service/survivingPatients.ts): the
   * export holds the survivor's compartment (and at Group level the survivor must be the member), and the
   * manifest's `error` file carries an information OperationOutcome naming the substitution (the IG: "error,
   * warning, and information messages related to the export should be included here"). Its links are read
   * as the caller reads Patients, so an absorbed id whose survivor the caller may not see is the 400 of an
   * unknown patient.
   */
  private async population(service: FhirService, request: ExportRequest, listed: string[]): Promise<{ population: Population; messages: OperationOutcome[] }> {
    if (request.level === 'system') {
      if (listed.length) throw badRequest('patient is defined for Patient/$export and Group/[id]/$export, not at system level', 'patient');
      return { population: {}, messages: [] };
    }
    let members: string[] | undefined;
    if (request.level === 'group') {
      const { resource } = await service.read('Group', request.group as string);
      members = resource ? currentPatientMembers(resource, new Date()) : [];
    }
    const survivors = listed.length ? await service.survivingPatients(listed, request.baseUrl) : new Map<string, string>();
    // A member is what the id stands for now; an id the caller cannot resolve is checked as named, like an unknown one.
    const outside = members && listed.find((id) => !(members as string[]).includes(survivors.get(id) ?? id));
    if (outside) throw badRequest(`patient 'Patient/${outside}' is not a member of Group/${request.group} now`, 'patient');
    const missing = listed.find((id) => !survivors.has(id));
    if (missing !== undefined) throw badRequest(`patient 'Patient/${missing}' is not known`, 'patient');
    const messages = listed.filter((id) => survivors.get(id) !== id).map((id) => replacedByOutcome(id, survivors.get(id) as string, 'this export'));
    const patients = listed.length ? [...new Set(survivors.values())] : (members ?? 'all');
    return { population: request.level === 'group' ? { patients, group: request.group } : { patients }, messages };
  }

  /** The caller's job (404 for anyone else's, a cancelled or an expired one); 403 for a token that may read nothing. */
  async status(service: FhirService, id: string): Promise<ExportJob> {
    service.requireExportAccess();
    await this.sweep();
    const job = await this.options.jobs.get(id, service.binding.caller.clientId);
    if (!job) throw notFound(`No export job '${id}'`);
    return job;
  }

  /** The path of one of the caller's completed job's files; 403 unless the caller may still read or search its type. */
  async file(service: FhirService, id: string, name: string): Promise<string> {
    const job = await this.status(service, id);
    const output = job.status === 'completed' ? job.output.find((o) => o.file === name) : undefined;
    if (!output) throw notFound(`Export job '${id}' has no file '${name}'`);
    // The messages are about the request, not rows of a type: whoever may poll the job may read them.
    service.requireExportAccess(output.file === MESSAGES_FILE ? undefined : output.type);
    return path.join(this.options.directory, id, output.file);
  }

  /** Cancels the caller's job: the export stops at its next page and its files are removed. */
  async cancel(service: FhirService, id: string): Promise<void> {
    service.requireExportAccess();
    if (!(await this.options.jobs.cancel(id, service.binding.caller.clientId))) throw notFound(`No export job '${id}'`);
    await this.removeFiles(id);
  }

  /** Waits for this process's running exports (shutdown, tests). */
  async idle(): Promise<void> {
    while (this.running.size) await Promise.allSettled([...this.running]);
  }

  private async sweep(): Promise<void> {
    for (const id of await this.options.jobs.sweep()) await this.removeFiles(id);
  }

  private removeFiles(id: string): Promise<void> {
    return rm(path.join(this.options.directory, id), { recursive: true, force: true });
  }

  private async run(
    id: string,
    service: FhirService,
    plan: { types: string[]; listed: boolean; filters: Record<string, [string, string][][]>; since?: Date } & Population,
    messages: OperationOutcome[],
  ): Promise<void> {
    const folder = path.join(this.options.directory, id);
    const pageSize = this.options.pageSize ?? 5000;
    const counts = new Map<string, number>();
    let written = 0;
    /** Set when the job is no longer in progress (cancelled, expired) or a type failed: every type stops at its next page. */
    let stopped = false;
    /**
     * Progress is recorded beside the export, not between its pages: the pages are read in a transaction,
     * and on the embedded store (one connection) another statement would wait for it to end. One at a time;
     * its answer tells whether the job is still wanted.
     */
    let recording: Promise<void> | undefined;
    const record = () => {
      recording ??= this.options.jobs
        .progress(id, `${counts.size} of ${plan.types.length} types done, ${written} resources written`)
        .then(
          (wanted) => void (stopped ||= !wanted),
          () => undefined,
        )
        .finally(() => (recording = undefined));
    };
    const exportType = async (type: string) => {
      let out: WriteStream | undefined;
      let failure: Error | undefined;
      let count = 0;
      const options = { types: [type], listed: plan.listed, filters: plan.filters, since: plan.since, patients: plan.patients, group: plan.group, pageSize };
      try {
        await service.exportText(options, async (page) => {
          if (stopped) return false;
          if (page.count) {
            if (!out) {
              out = createWriteStream(path.join(folder, `${type}.ndjson`), { mode: 0o600 });
              out.on('error', (err) => (failure ??= err));
            }
            if (!out.write(page.ndjson) && !out.destroyed) await Promise.race([once(out, 'drain'), once(out, 'close')]);
            if (failure) throw failure;
            count += page.count;
            written += page.count;
            record();
          }
          return !stopped;
        });
      } catch (err) {
        (out as WriteStream | undefined)?.destroy();
        throw err;
      }
      if (out) {
        const file = out as WriteStream;
        file.end();
        if (!file.closed) await once(file, 'close');
        if (failure) throw failure;
      }
      counts.set(type, count);
    };
    try {
      await mkdir(folder, { recursive: true, mode: 0o700 });
      // Several types at once: one connection each, so the database and this process work side by side.
      const queue = [...plan.types];
      const lanes = Array.from({ length: Math.min(this.options.parallelTypes ?? 2, queue.length) }, async () => {
        for (let type = queue.shift(); type !== undefined && !stopped; type = queue.shift()) {
          try {
            await exportType(type);
          } catch (err) {
            stopped = true;
            throw err;
          }
        }
      });
      const failed = (await Promise.allSettled(lanes)).find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
      // The last word on whether the job is still wanted (a cancel may have come after the last page).
      await recording;
      record();
      await recording;
      if (stopped) {
        await this.removeFiles(id);
        return;
      }
      const output: ExportOutput[] = plan.types.filter((t) => (counts.get(t) ?? 0) > 0).map((type) => ({ type, file: `${type}.ndjson`, count: counts.get(type) as number }));
      if (messages.length) {
        await writeFile(path.join(folder, MESSAGES_FILE), messages.map((m) => `${JSON.stringify(m)}\n`).join(''), { mode: 0o600 });
        output.push({ type: 'OperationOutcome', file: MESSAGES_FILE, count: messages.length });
      }
      if (!(await this.options.jobs.complete(id, output))) await this.removeFiles(id);
    } catch (err) {
      await recording;
      await this.options.jobs.fail(id, err instanceof Error ? err.message : String(err));
      await this.removeFiles(id);
    }
  }
}
