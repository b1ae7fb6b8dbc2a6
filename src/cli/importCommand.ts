import { randomUUID } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import type { Bundle, Resource } from '../fhir/types';
import type { AdminApi } from './adminApi';
import { CliError, usageError } from './cliError';
import { failedEntry, listFiles, reasonOf, requestsOf } from './importSource';

/**
 * `admin import`: loads files into a running server through its FHIR API, several transactions in flight.
 * A transaction that fails on one entry is retried without that entry, so one invalid resource is reported
 * (with the server's reason and location) instead of losing the rest of a patient's record. Every Bundle
 * carries an Idempotency-Key, so one resent after a lost answer is not stored twice.
 */
export interface ImportOptions {
  endpoint: string;
  concurrency?: string;
  paths: string[];
  progress?: { write(text: string): unknown; isTTY?: boolean };
}

interface Rejected {
  file: string;
  entry?: number;
  fullUrl?: string;
  resourceType?: string;
  status: number;
  reason: string;
}

export interface ImportSummary {
  endpoint: string;
  files: number;
  loaded: number;
  rejected: Rejected[];
  byType: Record<string, number>;
  seconds: number;
  resourcesPerSecond: number;
}

/** A throttled request is sent again this many times before it counts as rejected. */
const MAX_THROTTLED_RETRIES = 120;
const MAX_RETRIES_PER_REQUEST = 50;
/** A request that got no answer (the server unreachable) is sent again this many times. */
const MAX_LOST_ANSWERS = 60;

export async function runImport(api: AdminApi, options: ImportOptions): Promise<ImportSummary> {
  const concurrency = options.concurrency === undefined ? 4 : Number(options.concurrency);
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64) throw usageError('--concurrency must be a whole number from 1 to 64');
  let files: string[];
  try {
    files = listFiles(options.paths);
  } catch (err) {
    throw new CliError(`Cannot read ${(err as { path?: string }).path ?? options.paths.join(' ')}: ${(err as Error).message}`);
  }
  if (!files.length) throw new CliError('No .json or .ndjson files found in the given paths');
  const totalBytes = files.reduce((n, f) => n + statSync(f).size, 0);

  const base = `${api.url}/fhir/customer/${encodeURIComponent(options.endpoint)}`;
  let token = await mint(api, options.endpoint);
  const summary: ImportSummary = { endpoint: options.endpoint, files: files.length, loaded: 0, rejected: [], byType: {}, seconds: 0, resourcesPerSecond: 0 };
  const started = Date.now();
  let doneFiles = 0;
  let doneBytes = 0;
  const progress = new Progress(options.progress, () => {
    const seconds = (Date.now() - started) / 1000;
    const rate = summary.loaded / Math.max(seconds, 0.001);
    const eta = doneBytes > 0 ? ((totalBytes - doneBytes) * seconds) / doneBytes : undefined;
    return `files ${doneFiles}/${files.length}  resources ${summary.loaded}  ${rate.toFixed(0)}/s  rejected ${summary.rejected.length}  ETA ${eta === undefined ? '?' : `${Math.ceil(eta)}s`}`;
  });

  const post = async (bundle: Bundle): Promise<{ status: number; body: unknown }> => {
    // One key per Bundle sent, the same on every retry of it: a Bundle whose answer was lost (a dropped
    // connection, a server restarted after its commit) is answered from the server's record, not written twice.
    const key = randomUUID();
    for (let attempt = 0, lost = 0; ; attempt++) {
      let res: Response;
      try {
        res = await fetch(base, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/fhir+json', accept: 'application/fhir+json', 'idempotency-key': key },
          body: JSON.stringify(bundle),
        });
      } catch (err) {
        // No answer at all (connection refused or reset): safe to send again under the same key.
        if (++lost > MAX_LOST_ANSWERS) throw err;
        await new Promise((r) => setTimeout(r, Math.min(5000, 250 * lost)));
        continue;
      }
      const body = await res.json().catch(() => undefined);
      // Tokens are short-lived: a long import gets a fresh one.
      if (res.status === 401 && attempt === 0) {
        token = await mint(api, options.endpoint);
        continue;
      }
      // The server is asking for a pause (its aggregation is behind): wait as told and send it again.
      if ((res.status === 503 || res.status === 429) && attempt < MAX_THROTTLED_RETRIES) {
        await new Promise((r) => setTimeout(r, 1000 * Math.min(30, Number(res.headers.get('retry-after')) || 1)));
        continue;
      }
      return { status: res.status, body };
    }
  };

  const loadRequest = async (file: string, bundle: Bundle) => {
    const entries = [...(bundle.entry ?? [])];
    // Where each entry still sent stood in the file's Bundle: the server numbers the entries of what it was sent.
    const positions = entries.map((_, i) => i);
    for (let retry = 0; retry <= MAX_RETRIES_PER_REQUEST && entries.length; retry++) {
      const { status, body } = await post({ ...bundle, entry: entries });
      if (status === 200) {
        const response = body as Bundle;
        response.entry?.forEach((e, i) => {
          if (bundle.type === 'batch' && !/^2/.test(e.response?.status ?? '')) {
            summary.rejected.push({ file, entry: positions[i], status: Number(e.response?.status), reason: reasonOf(e.response?.outcome) });
            return;
          }
          const type = (entries[i].resource as Resource | undefined)?.resourceType ?? e.response?.location?.split('/')[0] ?? 'unknown';
          summary.byType[type] = (summary.byType[type] ?? 0) + 1;
          summary.loaded++;
        });
        return;
      }
      if (status === 404 && !failedEntry(body) && retry === 0) throw new CliError(`The server has no endpoint '${options.endpoint}'`);
      const index = failedEntry(body);
      if (index === undefined || index >= entries.length) {
        summary.rejected.push({ file, status, reason: reasonOf(body) });
        return;
      }
      const [bad] = entries.splice(index, 1);
      const [position] = positions.splice(index, 1);
      summary.rejected.push({ file, entry: position, fullUrl: bad.fullUrl, resourceType: (bad.resource as Resource | undefined)?.resourceType, status, reason: reasonOf(body) });
    }
  };

  let next = 0;
  const worker = async () => {
    while (next < files.length) {
      const file = files[next++];
      const size = statSync(file).size;
      try {
        for (const bundle of requestsOf(file, readFileSync(file, 'utf8'))) await loadRequest(file, bundle);
      } catch (err) {
        if (err instanceof CliError) throw err;
        summary.rejected.push({ file, status: 0, reason: (err as Error).message });
      }
      doneFiles++;
      doneBytes += size;
      progress.tick();
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(concurrency, files.length) }, worker));
  } finally {
    progress.end();
  }
  summary.seconds = Number(((Date.now() - started) / 1000).toFixed(2));
  // Fresh planner statistics, so searches over what was just loaded get good plans at once.
  if (summary.loaded > 0) await api.call('POST', '/admin/analyze').catch(() => undefined);
  summary.resourcesPerSecond = Math.round(summary.loaded / Math.max(summary.seconds, 0.001));
  return summary;
}

async function mint(api: AdminApi, endpoint: string): Promise<string> {
  const issued = (await api.call('POST', `/admin/endpoints/${encodeURIComponent(endpoint)}/token`)) as { access_token: string };
  return issued.access_token;
}

/** One updating line on a terminal; a line every few seconds otherwise (CI logs). */
class Progress {
  private last = 0;
  constructor(
    private readonly out: { write(text: string): unknown; isTTY?: boolean } | undefined,
    private readonly line: () => string,
  ) {}

  tick(): void {
    if (!this.out) return;
    const now = Date.now();
    if (this.out.isTTY) {
      if (now - this.last < 100) return;
      this.out.write(`\r${this.line()}\x1b[K`);
    } else {
      if (now - this.last < 2000) return;
      this.out.write(`${this.line()}\n`);
    }
    this.last = now;
  }

  end(): void {
    if (!this.out) return;
    this.out.write(this.out.isTTY ? `\r${this.line()}\x1b[K\n` : `${this.line()}\n`);
  }
}
