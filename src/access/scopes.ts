import type { TokenFamily } from './caller';

/**
 * OAuth scopes of API clients. Syntax per RFC 6749 §3.3 (space-separated scope-tokens); meaning per
 * SMART App Launch v2 (https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html):
 * `system/<Type|*>.<cruds subset>`, with the v1 forms `.read`, `.write` and `.*` understood as
 * `.rs`, `.cud` and `.cruds`. A client may ask for a narrower scope than it holds
 * (`system/Patient.rs` under `system/*.cruds`); anything else must match a held scope exactly.
 */
const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]+$/;
const SMART = /^(patient|user|system)\/([A-Za-z]+|\*)\.(read|write|\*|c?r?u?d?s?)$/;
const V1: Record<string, string> = { read: 'rs', write: 'cud', '*': 'cruds' };

/** What a new client may ask for unless told otherwise: everything its family's endpoints offer. */
export function defaultScopes(_family: TokenFamily): string[] {
  return ['system/*.cruds'];
}

export function isScopeToken(scope: string): boolean {
  return SCOPE_TOKEN.test(scope);
}

/** Splits a space-separated scope string (RFC 6749 §3.3), dropping repeats; undefined for blank input. */
export function parseScopes(value: string | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  const scopes = [...new Set(value.split(' ').filter((s) => s !== ''))];
  return scopes.length === 0 ? undefined : scopes;
}

function smart(scope: string): { context: string; type: string; permissions: string } | undefined {
  const m = SMART.exec(scope);
  if (!m || m[3] === '') return undefined;
  return { context: m[1], type: m[2], permissions: V1[m[3]] ?? m[3] };
}

/** Whether `scope` is a SMART scope (`system/Patient.rs`, `system/*.cruds`, v1 `.read`…): what API clients may hold. */
export function isSmartScope(scope: string): boolean {
  return smart(scope) !== undefined;
}

/** Whether holding `held` entitles a client to be granted `requested`. */
export function scopeCovers(held: string, requested: string): boolean {
  if (held === requested) return true;
  const h = smart(held);
  const r = smart(requested);
  if (!h || !r || h.context !== r.context) return false;
  if (h.type !== '*' && h.type !== r.type) return false;
  return [...r.permissions].every((p) => h.permissions.includes(p));
}

/**
 * The scopes to grant: all held scopes when none are requested (RFC 6749 §3.3 lets the server pick a
 * default), else exactly the requested ones, provided each is covered. Returns the requested scopes
 * that are not covered in `denied`.
 */
export function grantScopes(requested: string[] | undefined, held: string[]): { granted: string[]; denied: string[] } {
  if (requested === undefined) return { granted: held, denied: [] };
  const denied = requested.filter((r) => !held.some((h) => scopeCovers(h, r)));
  return { granted: denied.length ? [] : requested, denied };
}

/** One SMART v2 permission letter: create, read, update, delete, search. */
export type Permission = 'c' | 'r' | 'u' | 'd' | 's';

/**
 * Whose data a caller's scopes speak for. A client's `system/` scopes grant their letters; a patient-scoped
 * token (NHS Login, claim `patient`) is granted by its `patient/` scopes alone, and only their read and
 * search letters: a patient app reads its patient's record and writes nothing (the access predicate keeps
 * it to that patient's compartment). `user/` scopes grant nothing yet: no user identity is established.
 */
export interface ScopeContext {
  /** The caller speaks for one patient (its token carries the `patient` claim). */
  patient?: boolean;
}

/** The letters one SMART scope grants in `context`: none for a scope of another context. */
function granted(s: { context: string; permissions: string }, context: ScopeContext): string {
  if (context.patient) return s.context === 'patient' ? s.permissions.replace(/[cud]/g, '') : '';
  return s.context === 'system' ? s.permissions : '';
}

/** Whether `scopes` allow `permission` on resources of `type` (see ScopeContext for which scopes count). */
export function permits(scopes: readonly string[], permission: Permission, type: string, context: ScopeContext = {}): boolean {
  return scopes.some((scope) => {
    const s = smart(scope);
    return s !== undefined && (s.type === '*' || s.type === type) && granted(s, context).includes(permission);
  });
}

/**
 * The resource types on which `scopes` allow any of `permissions`: `'*'` when a wildcard scope does,
 * else the (possibly empty) list of named types.
 */
export function permittedTypes(scopes: readonly string[], permissions: readonly Permission[], context: ScopeContext = {}): '*' | string[] {
  const types = new Set<string>();
  for (const scope of scopes) {
    const s = smart(scope);
    if (!s || !permissions.some((p) => granted(s, context).includes(p))) continue;
    if (s.type === '*') return '*';
    types.add(s.type);
  }
  return [...types].sort();
}

/** The v1 spelling of a v2 permission, for messages: reads and searches were `read`, the rest `write`. */
export function v1Permission(permission: Permission): 'read' | 'write' {
  return permission === 'r' || permission === 's' ? 'read' : 'write';
}
