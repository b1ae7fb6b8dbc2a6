import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import type { Bundle, BundleEntry, Resource } from '../fhir/types';

/**
 * What the importer reads, turned into transaction Bundles the FHIR API takes: transaction and batch
 * Bundles as they are; collections (and any other Bundle) as transactions whose entries keep their fullUrls,
 * so references between them still resolve; NDJSON as transactions of a few hundred resources. Pure.
 */
export const NDJSON_CHUNK = 250;

export function listFiles(paths: string[]): string[] {
  const out: string[] = [];
  const visit = (p: string) => {
    const st = statSync(p);
    if (st.isDirectory()) for (const name of readdirSync(p).sort()) visit(path.join(p, name));
    else if (/\.(json|ndjson)$/i.test(p)) out.push(p);
  };
  for (const p of paths) visit(p);
  return out;
}

function requestFor(resource: Resource): BundleEntry['request'] {
  return resource.id ? { method: 'PUT', url: `${resource.resourceType}/${resource.id}` } : { method: 'POST', url: resource.resourceType };
}

export function toTransaction(resources: { resource: Resource; fullUrl?: string }[]): Bundle {
  return {
    resourceType: 'Bundle',
    type: 'transaction',
    entry: resources.map(({ resource, fullUrl }) => ({ ...(fullUrl ? { fullUrl } : {}), resource, request: requestFor(resource) })),
  };
}

/** The requests one file becomes. Throws with a reason when the file is not FHIR JSON. */
export function requestsOf(file: string, text: string): Bundle[] {
  if (/\.ndjson$/i.test(file)) {
    const lines = text.split('\n').filter((l) => l.trim() !== '');
    const resources = lines.map((line, i) => {
      try {
        return { resource: JSON.parse(line) as Resource };
      } catch {
        throw new Error(`line ${i + 1} is not JSON`);
      }
    });
    const out: Bundle[] = [];
    for (let i = 0; i < resources.length; i += NDJSON_CHUNK) out.push(toTransaction(resources.slice(i, i + NDJSON_CHUNK)));
    return out;
  }
  let json: Resource;
  try {
    json = JSON.parse(text) as Resource;
  } catch (err) {
    throw new Error(`not JSON (${(err as Error).message})`, { cause: err });
  }
  if (json.resourceType !== 'Bundle') return [toTransaction([{ resource: json }])];
  const bundle = json as Bundle;
  if (bundle.type === 'transaction' || bundle.type === 'batch') return [bundle];
  return [toTransaction((bundle.entry ?? []).filter((e) => e.resource).map((e) => ({ resource: e.resource as Resource, fullUrl: e.fullUrl })))];
}

/** `Bundle.entry[3]` in an OperationOutcome → 3: which entry a transaction failed on. */
export function failedEntry(outcome: unknown): number | undefined {
  const text = JSON.stringify(outcome ?? '');
  const m = /Bundle\.entry\[(\d+)\]/.exec(text);
  return m ? Number(m[1]) : undefined;
}

export function reasonOf(outcome: unknown): string {
  const issues = (outcome as { issue?: { diagnostics?: string; code?: string }[] })?.issue;
  if (!Array.isArray(issues)) return JSON.stringify(outcome).slice(0, 300);
  return issues.map((i) => i.diagnostics ?? i.code).join('; ');
}
