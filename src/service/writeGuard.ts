import { AGGREGATED_STORE } from '../aggregator/outbox';
import { PRIVACY_LABEL_SYSTEM, PRIVACY_LABELS, SOURCE_SYSTEM } from '../aggregator/rules';
import { OperationOutcomeError, operationOutcome, type OperationOutcomeIssue } from '../fhir/outcome';
import type { Coding, Resource } from '../fhir/types';

/**
 * What a client may not write into a customer store (issue 13, mass assignment), checked on the resource
 * about to be stored by every write FhirService performs (create, update, the result of a patch, the
 * conditional forms, transaction and batch entries, GraphQL mutations). All problems are reported at once,
 * each naming its element; nothing is written.
 *
 * 403 (forbidden): well-formed content that only the server may assert —
 * - `meta.security` codings of the source-tracking systems (DESIGN §3.7: the aggregator computes them; a
 *   client claiming a source organisation/team/practitioner/patient would claim someone else's source view);
 * - `Patient.link` of type `replaced-by` (set by the aggregator when groups merge, DESIGN §3.8).
 * 400 (invalid): content that breaks the data rules for any caller —
 * - a privacy-label coding whose code is not one of the four labels, or more than one privacy-label coding
 *   on one resource (DESIGN §4: exactly one per data point; none is fine);
 * - a reference that names another store of this server (`…/fhir/customer/<other endpoint>/…` or
 *   `…/fhir/aggregated/…`). References resolve inside the store they are written to (the aggregator drops
 *   the server part, DESIGN §3.2), so such a reference would silently point somewhere else. It is refused
 *   whatever the host, and with the same answer whether that store exists or whose it is, so it reveals
 *   nothing about other customers' endpoints.
 * Contained resources are checked like the resource itself.
 */
export function writeGuard(resource: Resource, store: string): void {
  const forbidden: OperationOutcomeIssue[] = [];
  const invalid: OperationOutcomeIssue[] = [];
  checkResource(resource, resource.resourceType, forbidden, invalid);
  const contained = Array.isArray(resource.contained) ? (resource.contained as Resource[]) : [];
  contained.forEach((c, i) => {
    if (c && typeof c === 'object') checkResource(c, `${resource.resourceType}.contained[${i}]`, forbidden, invalid);
  });
  walkReferences(resource, [resource.resourceType], (reference, expressionAt) => {
    const other = otherStore(reference, store);
    if (other) {
      const expression = expressionAt();
      invalid.push(issue('invalid', `${expression} ('${reference}') names ${other}; references must point into the store they are written to (write 'Type/id')`, expression));
    }
  });
  if (forbidden.length) throw new OperationOutcomeError(403, operationOutcome([...forbidden, ...invalid]));
  if (invalid.length) throw new OperationOutcomeError(400, operationOutcome(invalid));
}

const SOURCE_SYSTEMS = new Set<string>(Object.values(SOURCE_SYSTEM));
const LABELS = new Set<string>(PRIVACY_LABELS);

function checkResource(resource: Resource, path: string, forbidden: OperationOutcomeIssue[], invalid: OperationOutcomeIssue[]): void {
  const security = resource.meta?.security;
  if (Array.isArray(security)) {
    const labels: number[] = [];
    security.forEach((coding: Coding, i) => {
      const at = `${path}.meta.security[${i}]`;
      if (SOURCE_SYSTEMS.has(coding?.system ?? '')) {
        forbidden.push(issue('forbidden', `${at}: codings of ${coding.system} are assigned by the server (source tracking) and may not be sent`, at));
      } else if (coding?.system === PRIVACY_LABEL_SYSTEM) {
        labels.push(i);
        if (!LABELS.has(coding.code ?? '')) {
          invalid.push(issue('invalid', `${at}: '${coding.code ?? ''}' is not a privacy label; use one of ${PRIVACY_LABELS.join(', ')}`, at));
        }
      }
    });
    if (labels.length > 1) {
      invalid.push(
        issue(
          'invalid',
          `${path}.meta.security carries ${labels.length} privacy labels; a data point has at most one`,
          labels.map((i) => `${path}.meta.security[${i}]`),
        ),
      );
    }
  }
  if (resource.resourceType === 'Patient' && Array.isArray(resource.link)) {
    (resource.link as { type?: unknown }[]).forEach((link, i) => {
      if (link?.type === 'replaced-by') {
        const at = `${path}.link[${i}].type`;
        forbidden.push(issue('forbidden', `${at}: 'replaced-by' links are set by the server when records merge and may not be sent`, at));
      }
    });
  }
}

/**
 * Every `reference` string anywhere in the resource (References of any datatype, extensions, contained).
 * `path` is the chain of keys and indices down to the node; its FHIRPath-style text (`Observation.subject`)
 * is built only for a reference that is visited, not for every node walked (every write passes here).
 */
function walkReferences(node: unknown, path: (string | number)[], visit: (reference: string, expression: () => string) => void): void {
  if (Array.isArray(node)) {
    for (let i = 0; i < node.length; i++) {
      path.push(i);
      walkReferences(node[i], path, visit);
      path.pop();
    }
    return;
  }
  if (!node || typeof node !== 'object') return;
  const obj = node as Record<string, unknown>;
  for (const key in obj) {
    const value = obj[key];
    path.push(key);
    if (key === 'reference' && typeof value === 'string') visit(value, () => expressionOf(path));
    else if (value !== null && typeof value === 'object') walkReferences(value, path, visit);
    path.pop();
  }
}

/** `['Observation', 'subject', 'reference']` → `Observation.subject.reference`; indices as `[i]`. */
function expressionOf(path: (string | number)[]): string {
  let out = String(path[0]);
  for (let i = 1; i < path.length; i++) out += typeof path[i] === 'number' ? `[${path[i]}]` : `.${path[i]}`;
  return out;
}

/**
 * A reference in which no path segment can read `fhir`: without the letters, a `%` escape, or the tab and line
 * breaks a URL parser drops, so `otherStore` has nothing to find. Nearly every reference (`Patient/123`) is one.
 */
const cannotNameAStore = (reference: string): boolean => !reference.includes('fhir') && !/[%\t\n\r]/.test(reference);

/**
 * The store of this server a reference names when it is not `store`, described for the message; undefined
 * for relative `Type/id` references, references into `store` itself, and URLs without a store path.
 */
function otherStore(reference: string, store: string): string | undefined {
  if (cannotNameAStore(reference)) return undefined;
  let segments: string[];
  try {
    segments = new URL(reference, 'http://relative.invalid/').pathname.split('/').map((s) => decodeURIComponent(s));
  } catch {
    return undefined;
  }
  for (let i = 0; i < segments.length - 1; i++) {
    if (segments[i] !== 'fhir') continue;
    if (segments[i + 1] === 'aggregated' && store !== AGGREGATED_STORE) return 'the aggregated record';
    if (segments[i + 1] === 'customer' && segments[i + 2] !== undefined && segments[i + 2] !== store) return 'another FHIR endpoint';
  }
  return undefined;
}

function issue(code: 'forbidden' | 'invalid', diagnostics: string, expression: string | string[]): OperationOutcomeIssue {
  return { severity: 'error', code, diagnostics, expression: Array.isArray(expression) ? expression : [expression] };
}
