import { OperationOutcomeError, forbidden } from '../fhir/outcome';
import type { AccessFilter } from '../service/ports';
import type { Caller } from './caller';
import { type Permission, permits, permittedTypes, v1Permission } from './scopes';

/**
 * What a caller's SMART scopes mean for one interaction: a refusal (403 `insufficient_scope`, RFC 6750 §3.1)
 * when the scope for it is missing, and a row filter limiting what searches, includes, chains and history
 * return to the types the caller may read or search.
 */

/** 403 naming the scope that was needed, in v2 syntax and its v1 equivalent. */
export function insufficientScope(permission: Permission, type: string): OperationOutcomeError {
  const scope = `system/${type}.${permission}`;
  return refusal(`This interaction needs the scope ${scope} (v1: system/${type}.${v1Permission(permission)}), which the access token does not carry`, scope);
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
    if (!permits(caller.scopes, permission, type)) throw insufficientScope(permission, type);
  }
}

/** A system-level search or history: allowed when the caller may search at least one type. */
export function requireSomeSearch(caller: Caller): void {
  const types = permittedTypes(caller.scopes, ['s']);
  if (types !== '*' && types.length === 0) {
    throw refusal('A search or history across all types needs the search scope on at least one type, e.g. system/Patient.s (v1: system/Patient.read)', 'system/*.s');
  }
}

/** Rows of the types the caller may read or search; undefined when a wildcard scope allows every type. */
export function typeRestriction(caller: Caller): AccessFilter | undefined {
  const types = permittedTypes(caller.scopes, ['r', 's']);
  if (types === '*') return undefined;
  return { condition: (alias, bind) => `${alias}.type = ANY(${bind(types)}::text[])` };
}

/** Every one of `filters` (the undefined ones allow everything); undefined when none restricts. */
export function allOf(...filters: (AccessFilter | undefined)[]): AccessFilter | undefined {
  const present = filters.filter((f): f is AccessFilter => f !== undefined);
  if (present.length <= 1) return present[0];
  return { condition: (alias, bind) => present.map((f) => `(${f.condition(alias, bind)})`).join(' AND ') };
}
