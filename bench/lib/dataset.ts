import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT } from './server';

/**
 * Synthea R4 transaction bundles (one patient each, 100 of them, ~24,000 resources) and a deterministic
 * scaler: copy k ≥ 1 of a bundle gets every `urn:uuid:` placeholder and every identifier value rewritten
 * with a copy tag, so copies are distinct patients (no identifier collides, so nothing merges or matches a
 * conditional create) with stable, repeatable content — same (patient index) → same bytes, on any machine.
 * 4,200 patients make about a million resources. BENCH_SYNTHEA_DIR points elsewhere (a git worktree's checkout
 * has no ../shared beside it).
 */
export const SYNTHEA_R4 = process.env.BENCH_SYNTHEA_DIR || path.resolve(ROOT, '../shared/data/synthea-r4');

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
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) return node.forEach(walk);
    if (!node || typeof node !== 'object') return;
    for (const [key, value] of Object.entries(node as Record<string, unknown>)) {
      if (key === 'identifier') {
        for (const id of Array.isArray(value) ? value : [value]) {
          if (id && typeof id === 'object' && typeof (id as { value?: unknown }).value === 'string') (id as { value: string }).value += `-c${tag}`;
        }
      }
      walk(value);
    }
  };
  walk(bundle);
  return JSON.stringify(bundle);
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
