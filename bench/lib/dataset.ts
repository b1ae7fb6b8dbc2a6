import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT } from './server';

/**
 * Synthea R4 transaction bundles (one patient each, 100 of them, ~24,000 resources) and a deterministic
 * scaler: copy k ≥ 1 of a bundle gets every `urn:uuid:` placeholder and every identifier value rewritten
 * with a copy tag, so copies are distinct patients (no identifier collides, so nothing merges or matches a
 * conditional create) with stable, repeatable content — same (patient index) → same bytes, on any machine.
 * Copies also get their own names and dates (issue 19 item 4), so that a string or chained search for one
 * patient's name or a date search keeps matching about as many rows as in the first 100, however far the
 * data is scaled: every HumanName's family and given names start with a syllable of the copy (`Smith` →
 * `Basmith`: no prefix search for the original matches it), and every full date in the bundle moves back by
 * the copy's own number of days (one shift per copy, so the record stays consistent: birth before visits).
 * 4,200 patients make about a million resources.
 */
export const SYNTHEA_R4 =
  process.env.SYNTHEA_R4_DIR ||
  process.env.BENCH_SYNTHEA_DIR ||
  // Beside the checkout, or beside the folder of worktrees a checkout may sit in.
  [path.resolve(ROOT, '../shared/data/synthea-r4'), path.resolve(ROOT, '../../shared/data/synthea-r4')].find((dir) => existsSync(dir)) ||
  path.resolve(ROOT, '../shared/data/synthea-r4');

let texts: string[] | undefined;

function sources(): string[] {
  if (texts) return texts;
  if (!existsSync(SYNTHEA_R4)) throw new Error(`Synthea data not found at ${SYNTHEA_R4}`);
  const files = readdirSync(SYNTHEA_R4)
    .filter((f) => f.endsWith('.json'))
    .sort();
  if (!files.length) throw new Error(`no Synthea bundles in ${SYNTHEA_R4}`);
  texts = files.map((f) => readFileSync(path.join(SYNTHEA_R4, f), 'utf8'));
  return texts;
}

/** Copy `copy` of a bundle's text; copy 0 is the bundle unchanged. */
export function scaledBundle(text: string, copy: number): string {
  if (copy === 0) return text;
  // Synthea's placeholders are lower-case v4 UUIDs: replacing their first 6 hex digits with the copy number
  // keeps them valid, unique per copy and stable.
  const tag = copy.toString(16).padStart(6, '0');
  const bundle = JSON.parse(text.replace(/urn:uuid:([0-9a-f]{8})/g, (_m, a: string) => `urn:uuid:${tag}${a.slice(6)}`)) as unknown;
  const syllable = copySyllable(copy);
  const rename = (name: string) => `${syllable}${name.charAt(0).toLowerCase()}${name.slice(1)}`;
  const days = copyDayShift(copy);
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) return node.forEach(walk);
    if (!node || typeof node !== 'object') return;
    const record = node as Record<string, unknown>;
    for (const [key, value] of Object.entries(record)) {
      if (key === 'identifier') {
        for (const id of Array.isArray(value) ? value : [value]) {
          if (id && typeof id === 'object' && typeof (id as { value?: unknown }).value === 'string') (id as { value: string }).value += `-c${tag}`;
        }
      }
      if (key === 'name' && Array.isArray(value)) {
        for (const name of value as Record<string, unknown>[]) {
          if (!name || typeof name !== 'object') continue;
          if (typeof name.family === 'string') name.family = rename(name.family);
          if (Array.isArray(name.given)) name.given = name.given.map((g) => (typeof g === 'string' ? rename(g) : g));
        }
      }
      if (typeof value === 'string') {
        const shifted = shiftDate(value, days);
        if (shifted !== value) record[key] = shifted;
      } else if (Array.isArray(value) && value.some((v) => typeof v === 'string')) {
        record[key] = value.map((v) => (typeof v === 'string' ? shiftDate(v, days) : v));
      }
      walk(record[key]);
    }
  };
  walk(bundle);
  return JSON.stringify(bundle);
}

const CONSONANTS = 'bcdfghjklmnprstvz';
const VOWELS = 'aeiou';

/** A pronounceable syllable string unique to `copy` ≥ 1 (bijective base 85 in consonant-vowel pairs): 1 → `Ba`. */
export function copySyllable(copy: number): string {
  let n = copy;
  let out = '';
  while (n > 0) {
    n -= 1;
    const digit = n % (CONSONANTS.length * VOWELS.length);
    out = CONSONANTS[Math.floor(digit / VOWELS.length)] + VOWELS[digit % VOWELS.length] + out;
    n = Math.floor(n / (CONSONANTS.length * VOWELS.length));
  }
  return out.charAt(0).toUpperCase() + out.slice(1);
}

/** Days copy `copy` ≥ 1 is moved back: distinct for the first 3,650 copies (7,919 is prime to 3,650), never 0. */
export function copyDayShift(copy: number): number {
  return 1 + ((copy * 7919) % 3650);
}

const FULL_DATE = /^(\d{4})-(\d{2})-(\d{2})(T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2}))?$/;

/** A FHIR date or dateTime with its calendar date moved back `days` (time and zone kept); anything else unchanged. */
export function shiftDate(value: string, days: number): string {
  const m = FULL_DATE.exec(value);
  if (!m) return value;
  const d = new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])) - days * 86_400_000);
  return `${d.toISOString().slice(0, 10)}${m[4] ?? ''}`;
}

/** Patient `index` of the scaled dataset: the Synthea patients in file order, then copy 1 of each, … */
export function patientBundle(index: number): string {
  const all = sources();
  return scaledBundle(all[index % all.length], Math.floor(index / all.length));
}

/** Bundles of patients `from` (inclusive) to `to` (exclusive). */
export function* bundles(from: number, to: number): Generator<string> {
  for (let i = from; i < to; i++) yield patientBundle(i);
}

export function entryCount(bundleText: string): number {
  return (JSON.parse(bundleText) as { entry?: unknown[] }).entry?.length ?? 0;
}

/** Every resource body of patients `from`..`to`, as JSON text (the ingest floor inserts exactly these). */
export function resourceBodies(from: number, to: number): string[] {
  const out: string[] = [];
  for (const text of bundles(from, to)) for (const e of (JSON.parse(text) as { entry: { resource: unknown }[] }).entry) out.push(JSON.stringify(e.resource));
  return out;
}
