import { readFileSync } from 'node:fs';
import type { AdminApi } from './adminApi';
import { CliError } from './cliError';
import { nativeEntriesOf, type SourceLine } from './nativeImportSource';

/**
 * `admin import-native --organization ORG FILE`: loads timeline entries (CSV or NDJSON, columns in
 * nativeImportSource.ts) into an organisation's native record through the server's GraphQL door, in chunks
 * written all or nothing. A chunk refused for one entry (the refusal names it, `entries[i].field`) is sent
 * again without it, so one bad line is reported with its reason instead of losing its neighbours.
 */
export interface ImportNativeOptions {
  organization: string;
  file: string;
  progress?: { write(text: string): unknown; isTTY?: boolean };
}

export interface ImportNativeSummary {
  organization: string;
  file: string;
  lines: number;
  loaded: number;
  byKind: Record<string, number>;
  rejected: { line: number; reason: string }[];
  seconds: number;
  entriesPerSecond: number;
}

const CHUNK = 200;
const MUTATION = 'mutation Import($entries: [NativeImportEntryInput!]!) { nativeImportTimeline(entries: $entries) }';

interface GraphqlAnswer {
  data?: { nativeImportTimeline?: number } | null;
  errors?: { message: string; extensions?: { status?: number; resource?: { issue?: { expression?: string[] }[] } } }[];
}

export async function runImportNative(api: AdminApi, options: ImportNativeOptions): Promise<ImportNativeSummary> {
  let lines: SourceLine[];
  try {
    lines = nativeEntriesOf(options.file, readFileSync(options.file, 'utf8'));
  } catch (err) {
    throw new CliError(`Cannot read ${options.file}: ${(err as Error).message}`);
  }
  const summary: ImportNativeSummary = {
    organization: options.organization,
    file: options.file,
    lines: lines.length,
    loaded: 0,
    byKind: {},
    rejected: [],
    seconds: 0,
    entriesPerSecond: 0,
  };
  for (const l of lines) if (l.error) summary.rejected.push({ line: l.line, reason: l.error });
  const readable = lines.filter((l) => l.entry);
  const started = Date.now();
  let token = await mint(api, options.organization);
  let done = 0;
  const report = () => {
    if (!options.progress) return;
    const rate = summary.loaded / Math.max((Date.now() - started) / 1000, 0.001);
    options.progress.write(
      `${options.progress.isTTY ? '\r' : ''}entries ${done}/${readable.length}  loaded ${summary.loaded}  ${rate.toFixed(0)}/s  rejected ${summary.rejected.length}${options.progress.isTTY ? '\x1b[K' : '\n'}`,
    );
  };

  const send = async (chunk: SourceLine[]): Promise<GraphqlAnswer> => {
    for (let attempt = 0; ; attempt++) {
      const res = await fetch(`${api.url}/graphql`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ query: MUTATION, variables: { entries: chunk.map((l) => l.entry) } }),
      });
      const answer = (await res.json().catch(() => ({ errors: [{ message: `HTTP ${res.status}` }] }))) as GraphqlAnswer;
      // Tokens are short-lived: a long import gets a fresh one.
      if (attempt === 0 && (res.status === 401 || answer.errors?.[0]?.extensions?.status === 401)) {
        token = await mint(api, options.organization);
        continue;
      }
      return answer;
    }
  };

  for (let i = 0; i < readable.length; i += CHUNK) {
    const chunk = readable.slice(i, i + CHUNK);
    while (chunk.length) {
      const answer = await send(chunk);
      if (!answer.errors?.length) {
        summary.loaded += chunk.length;
        for (const l of chunk) summary.byKind[l.entry?.kind ?? '?'] = (summary.byKind[l.entry?.kind ?? '?'] ?? 0) + 1;
        break;
      }
      const error = answer.errors[0];
      const where = error.extensions?.resource?.issue?.[0]?.expression?.[0] ?? '';
      const m = /^entries\[(\d+)\]\.(.*)$/.exec(where);
      if (!m || Number(m[1]) >= chunk.length) {
        // Not one entry's fault: the whole chunk is refused with the server's reason.
        for (const l of chunk) summary.rejected.push({ line: l.line, reason: error.message });
        break;
      }
      const [bad] = chunk.splice(Number(m[1]), 1);
      summary.rejected.push({ line: bad.line, reason: `${m[2]}: ${error.message}` });
    }
    done += readable.slice(i, i + CHUNK).length;
    report();
  }
  summary.rejected.sort((a, b) => a.line - b.line);
  summary.seconds = Number(((Date.now() - started) / 1000).toFixed(2));
  summary.entriesPerSecond = Math.round(summary.loaded / Math.max(summary.seconds, 0.001));
  return summary;
}

async function mint(api: AdminApi, organization: string): Promise<string> {
  const issued = (await api.call('POST', `/admin/organizations/${encodeURIComponent(organization)}/token`)) as { access_token: string };
  return issued.access_token;
}
