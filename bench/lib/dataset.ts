import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT } from './server';

/**
 * Synthea R4 transaction bundles, and a deterministic scaler: copy k of a bundle gets every urn:uuid and
 * every identifier value rewritten with a copy tag, so copies are distinct patients with stable, repeatable
 * content (same input → same bytes).
 */
export const SYNTHEA_R4 = path.resolve(ROOT, '../shared/data/synthea-r4');

export function syntheaFiles(): string[] {
  if (!existsSync(SYNTHEA_R4)) throw new Error(`Synthea data not found at ${SYNTHEA_R4}`);
  return readdirSync(SYNTHEA_R4).filter((f) => f.endsWith('.json')).sort().map((f) => path.join(SYNTHEA_R4, f));
}

export function scaledBundle(text: string, copy: number): string {
  if (copy === 0) return text;
  const tag = copy.toString(16).padStart(6, '0');
  const bundle = JSON.parse(text.replace(/urn:uuid:([0-9a-f]{8})/g, (_m, a: string) => `urn:uuid:${tag}${a.slice(6)}`));
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

/** `patients` bundles: the 100 Synthea patients, then scaled copies of them. */
export function* bundles(patients: number): Generator<string> {
  const files = syntheaFiles();
  const texts = files.map((f) => readFileSync(f, 'utf8'));
  for (let i = 0; i < patients; i++) yield scaledBundle(texts[i % texts.length], Math.floor(i / texts.length));
}

/** Every resource body of the first `patients` bundles, for the ingest floor. */
export function resourceBodies(patients: number): string[] {
  const out: string[] = [];
  for (const text of bundles(patients)) for (const e of (JSON.parse(text) as { entry: { resource: unknown }[] }).entry) out.push(JSON.stringify(e.resource));
  return out;
}
