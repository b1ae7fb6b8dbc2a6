import { OperationOutcomeError, forbidden } from '../fhir/outcome';
import type { AccessFilter } from '../service/ports';
import type { Caller } from './caller';
import { type Permission, permits, permittedTypes, type ScopeContext, v1Permission } from './scopes';

/**
 * What a caller's SMART scopes mean for one interaction: a refusal (403 `insufficient_scope`, RFC 6750 §3.1)
 * when the scope for it is missing, and a row filter limiting what searches, includes, chains and history
 * return to the types the caller may read or search.
 */

/** 403 naming the scope that was needed, in v2 syntax and its v1 equivalent. */
export function insufficientScope(permission: Permission, type: string, context: ScopeContext = {}): OperationOutcomeError {
  if (context.patient && !'rs'.includes(permission)) {
    return refusal(`A patient-scoped access token reads and searches only: it cannot ${v1Permission(permission)} ${type}`, `patient/${type}.${permission}`);
  }
  const prefix = context.patient ? 'patient' : 'system';
  const scope = `${prefix}/${type}.${permission}`;
  return refusal(`This interaction needs the scope ${scope} (v1: ${prefix}/${type}.${v1Permission(permission)}), which the access token does not carry`, scope);
}

/** Which of a caller's scopes count (scopes.ts ScopeContext): a patient-scoped token's `patient/` ones. */
function contextOf(caller: Caller): ScopeContext {
  return { patient: caller.patientId !== undefined };
}

function refusal(message: string, scope: string): OperationOutcomeError {
  const base = forbidden(message);
  return new OperationOutcomeError(base.status, base.outcome, {
    'WWW-Authenticate': `Bearer realm="tributary", error="insufficient_scope", scope="${scope}"`,
  });
}

/** Throws a 403 unless the caller holds every one of `permissions` on `type`; the first missing one is named. */
export function requireScope(caller: Caller, type: string, ...permissions: Permission[]): void {
  for (const permission of permissions) {
    if (!permits(caller.scopes, permission, type, contextOf(caller))) throw insufficientScope(permission, type, contextOf(caller));
  }
}

/** A system-level search or history: allowed when the caller may search at least one type. */
export function requireSomeSearch(caller: Caller): void {
  const types = permittedTypes(caller.scopes, ['s'], contextOf(caller));
  if (types !== '*' && types.length === 0) {
    throw refusal('A search or history across all types needs the search scope on at least one type, e.g. system/Patient.s (v1: system/Patient.read)', 'system/*.s');
  }
}

/** Results spanning types (a bulk export's status): allowed when the caller may read or search at least one type. */
export function requireSomeRead(caller: Caller): void {
  const types = permittedTypes(caller.scopes, ['r', 's'], contextOf(caller));
  if (types !== '*' && types.length === 0) {
    throw refusal('Exported data needs the read or search scope on at least one type, e.g. system/Patient.rs (v1: system/Patient.read)', 'system/*.rs');
  }
}

/** What was gathered of one type earlier (an export file): the caller must still read or search that type. */
export function requireReadOrSearch(caller: Caller, type: string): void {
  const context = contextOf(caller);
  if (!permits(caller.scopes, 'r', type, context) && !permits(caller.scopes, 's', type, context)) throw insufficientScope('s', type, context);
}

/** Rows of the types the caller may read or search; undefined when a wildcard scope allows every type. */
export function typeRestriction(caller: Caller): AccessFilter | undefined {
  const types = permittedTypes(caller.scopes, ['r', 's'], contextOf(caller));
  if (types === '*') return undefined;
  return { condition: (alias, bind) => `${alias}.type = ANY(${bind(types)}::text[])` };
}

/** Every one of `filters` (the undefined ones allow everything); undefined when none restricts. */
export function allOf(...filters: (AccessFilter | undefined)[]): AccessFilter | undefined {
  const present = filters.filter((f): f is AccessFilter => f !== undefined);
  if (present.length <= 1) return present[0];
  return { condition: (alias, bind) => present.map((f) => `(${f.condition(alias, bind)})`).join(' AND ') };
}
