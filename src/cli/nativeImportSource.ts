/**
 * What `admin import-native` reads (issue 14 item 4): timeline entries of the native record, one per CSV row
 * (a header row naming the columns) or per NDJSON line (an object with the same keys). Pure.
 *
 * Columns: `nhsNumber` or `patientId` (who), `kind` (appointment, note or measurement), `occurredAt`
 * (YYYY-MM-DD or a date-time with a zone), and as the kind needs: `endsAt`, `title`, `text`, `status`,
 * `codeSystem` (LOINC or SNOMED), `code`, `codeDisplay`, `value` (a decimal, kept as written), `unit`,
 * `privacyLabel`. Empty cells are absent values.
 */
export const NATIVE_COLUMNS = [
  'nhsNumber',
  'patientId',
  'kind',
  'occurredAt',
  'endsAt',
  'title',
  'text',
  'status',
  'codeSystem',
  'code',
  'codeDisplay',
  'value',
  'unit',
  'privacyLabel',
] as const;

export type NativeRow = Partial<Record<(typeof NATIVE_COLUMNS)[number], string>>;

export interface SourceLine {
  /** 1-based line of the file where the entry starts. */
  line: number;
  entry?: NativeRow;
  /** Why the line could not be read. */
  error?: string;
}

/** RFC 4180 records: quoted fields may hold commas, quotes ("") and line breaks. Each with its first line. */
export function csvRecords(text: string): { line: number; fields: string[] }[] {
  const records: { line: number; fields: string[] }[] = [];
  let fields: string[] = [];
  let field = '';
  let quoted = false;
  let line = 1;
  let start = 1;
  let any = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else {
        if (c === '\n') line++;
        field += c;
      }
      continue;
    }
    if (c === '"' && field === '') {
      quoted = true;
      any = true;
    } else if (c === ',') {
      fields.push(field);
      field = '';
      any = true;
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      if (any || field !== '') records.push({ line: start, fields: [...fields, field] });
      fields = [];
      field = '';
      any = false;
      line++;
      start = line;
    } else {
      field += c;
      any = true;
    }
  }
  if (any || field !== '') records.push({ line: start, fields: [...fields, field] });
  return records;
}

function clean(row: Record<string, unknown>): NativeRow {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(row)) {
    if (v === null || v === undefined || v === '') continue;
    out[k] = typeof v === 'string' ? v : String(v);
  }
  return out as NativeRow;
}

/** The entries of one file, by extension: `.csv` or `.ndjson` (`.jsonl`). Throws when the file as a whole is unusable. */
export function nativeEntriesOf(file: string, text: string): SourceLine[] {
  if (/\.(ndjson|jsonl)$/i.test(file)) {
    const out: SourceLine[] = [];
    text.split('\n').forEach((raw, i) => {
      if (raw.trim() === '') return;
      try {
        const value = JSON.parse(raw) as unknown;
        if (!value || typeof value !== 'object' || Array.isArray(value)) out.push({ line: i + 1, error: 'not a JSON object' });
        else out.push({ line: i + 1, entry: clean(value as Record<string, unknown>) });
      } catch {
        out.push({ line: i + 1, error: 'not JSON' });
      }
    });
    return out;
  }
  if (!/\.csv$/i.test(file)) throw new Error(`${file}: import-native reads .csv and .ndjson files`);
  const [header, ...records] = csvRecords(text.replace(/^\uFEFF/, ''));
  if (!header) return [];
  const names = header.fields.map((h) => h.trim());
  const unknown = names.filter((n) => !(NATIVE_COLUMNS as readonly string[]).includes(n));
  if (unknown.length) throw new Error(`${file}: unknown column${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')} (columns: ${NATIVE_COLUMNS.join(', ')})`);
  return records.map(({ line, fields }) => {
    if (fields.length !== names.length) return { line, error: `${fields.length} fields where the header has ${names.length}` };
    return { line, entry: clean(Object.fromEntries(names.map((n, i) => [n, fields[i].trim()]))) };
  });
}
