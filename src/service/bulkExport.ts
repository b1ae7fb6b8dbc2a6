import { randomUUID } from 'node:crypto';
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { once } from 'node:events';
import { badRequest, notFound } from '../fhir/outcome';
import type { ExportJob, ExportJobRepository, ExportOutput } from '../store/exportJobRepository';
import type { FhirService } from './fhirService';
import { parseQuery } from './fhirService';
import { stringifyFhirJson } from '../fhir/losslessJson';

/**
 * FHIR Bulk Data Access export (https://hl7.org/fhir/uv/bulkdata/export.html) over the aggregated record.
 * A kick-off is checked at once (types, scopes, `_since`, `_typeFilter`), recorded as a job row, and run in
 * this process through the caller's own `FhirService`, so every row is access-filtered like a search. The
 * export walks each type in pages and appends NDJSON to files under `DATA_DIR/exports/<job>/` (mode 0600);
 * between pages it records progress, which is also how it notices a cancellation (the row is no longer
 * in progress) and stops. Status, files and cancellation are answered from the row by any process.
 */
export interface ExportRequest {
  /** The kick-off URL, echoed in the manifest's `request`. */
  url: string;
  query: [string, string][];
  /** `system` ([base]/$export), `patient` (Patient/$export) or the Patient ids of a Group. */
  level: 'system' | 'patient' | { patients: string[] };
}

export interface BulkExportOptions {
  jobs: ExportJobRepository;
  /** Root folder of job files: `DATA_DIR/exports`. */
  directory: string;
  /** How long a job and its files are kept after the kick-off. */
  ttlHours: number;
  /** Resources per page read from the store. */
  pageSize?: number;
}

const NDJSON_FORMATS = new Set(['application/fhir+ndjson', 'application/ndjson', 'ndjson']);

export class BulkExport {
  private readonly running = new Set<Promise<void>>();

  constructor(private readonly options: BulkExportOptions) {}

  /** Checks and records a kick-off and starts the export; answers the job id. */
  async kickOff(service: FhirService, supported: ReadonlySet<string>, request: ExportRequest): Promise<string> {
    const get = (name: string) => request.query.filter(([k]) => k === name).map(([, v]) => v);
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
    const patients = request.level === 'system' ? undefined : request.level === 'patient' ? 'all' : request.level.patients;
    // Every type, unlisted: like a system-wide search, the caller must be able to search something.
    if (!listed.length) service.requireSomeSearch();
    // Scopes, unknown filter parameters and the like are refused now, not discovered by a failed job.
    const listedOnly = listed.length > 0;
    for (const type of types) {
      if (listedOnly || filters[type]) await service.exportPage({ types: [type], listed: true, filters, since, patients, count: 1 });
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
    const run = this.run(id, service, { types, listed: listedOnly, filters, patients, since }).finally(() => this.running.delete(run));
    this.running.add(run);
    return id;
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
    service.requireExportAccess(output.type);
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
    plan: { types: string[]; listed: boolean; filters: Record<string, [string, string][][]>; patients?: string[] | 'all'; since?: Date },
  ): Promise<void> {
    const folder = path.join(this.options.directory, id);
    const pageSize = this.options.pageSize ?? 1000;
    try {
      await mkdir(folder, { recursive: true, mode: 0o700 });
      const output: ExportOutput[] = [];
      for (const [i, type] of plan.types.entries()) {
        let out: WriteStream | undefined;
        let count = 0;
        let after: string | undefined;
        do {
          const page = await service.exportPage({ types: [type], listed: plan.listed, filters: plan.filters, since: plan.since, patients: plan.patients, after, count: pageSize });
          if (page.resources.length) {
            out ??= createWriteStream(path.join(folder, `${type}.ndjson`), { mode: 0o600 });
            const text = page.resources.map((r) => stringifyFhirJson(r)).join('\n') + '\n';
            if (!out.write(text)) await once(out, 'drain');
            count += page.resources.length;
          }
          after = page.next;
          if (!(await this.options.jobs.progress(id, `${type} (${i + 1} of ${plan.types.length} types), ${count} resources`))) {
            out?.destroy();
            await this.removeFiles(id);
            return;
          }
        } while (after);
        if (out) {
          out.end();
          await once(out, 'finish');
          output.push({ type, file: `${type}.ndjson`, count });
        }
      }
      if (!(await this.options.jobs.complete(id, output))) await this.removeFiles(id);
    } catch (err) {
      await this.options.jobs.fail(id, err instanceof Error ? err.message : String(err));
      await this.removeFiles(id);
    }
  }
}
