import { checkClientJwks, type ClientJwks } from '../access/clientJwks';
import { isSmartScope } from '../access/scopes';
import { PRIVACY_LABELS } from '../aggregator/rules';
import { ID, ID_SOURCE } from '../fhir/ids';
import { badRequest } from '../fhir/outcome';
import type { FhirVersion } from '../fhir/types';
import { CLIENT_FAMILIES, FHIR_VERSIONS, type ClientFamily } from '../store/tenancyRepository';

/**
 * The admin service's input checks, one function per kind of field. Every door hands over what it received
 * untouched (a JSON body, GraphQL arguments, CLI options turned into a body), so the same bad value gets the
 * same 400 OperationOutcome, naming the field, whichever door it came through.
 */

/** What a door hands over: the fields of one operation, any of them missing or of the wrong type. */
export type Untrusted<T> = { [K in keyof T]?: unknown };

const MAX_NAME = 200;
// Ids are FHIR ids (fhir/ids.ts): our own ids (`cus-…`, `ep-…`, `cli-…`) and aggregated ids are all of that shape.
const ORGANIZATION_REFERENCE = new RegExp(`^Organization/${ID_SOURCE}$`);

const isAbsent = (value: unknown) => value === undefined || value === null;

/** Refuses fields the operation does not take (a misspelt `defaultSourceOrganization` must not be ignored). */
export function onlyFields(input: object, allowed: readonly string[]): void {
  const unknown = Object.keys(input).filter((k) => !allowed.includes(k) && (input as Record<string, unknown>)[k] !== undefined);
  if (unknown.length) throw badRequest(`Unknown field${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `'${k}'`).join(', ')}: expected ${allowed.join(', ')}`, unknown);
}

export function idField(value: unknown, field: string): string {
  if (isAbsent(value) || value === '') throw badRequest(`'${field}' is required`, field);
  if (typeof value !== 'string' || !ID.test(value)) throw badRequest(`'${field}' must be an id (letters, digits, '-' and '.', at most 64)`, field);
  return value;
}

export function optionalId(value: unknown, field: string): string | undefined {
  return isAbsent(value) || value === '' ? undefined : idField(value, field);
}

/** A human-readable name, trimmed; `required` refuses a missing one, else it is null. */
export function nameField(value: unknown, field: string, required: boolean): string | null {
  if (isAbsent(value)) {
    if (required) throw badRequest(`'${field}' is required`, field);
    return null;
  }
  if (typeof value !== 'string' || value.trim() === '') throw badRequest(`'${field}' must be a non-empty string`, field);
  const trimmed = value.trim();
  if (trimmed.length > MAX_NAME) throw badRequest(`'${field}' must be at most ${MAX_NAME} characters`, field);
  return trimmed;
}

export function fhirVersionField(value: unknown): FhirVersion {
  if (!FHIR_VERSIONS.includes(value as FhirVersion)) throw badRequest(`'fhirVersion' must be one of ${FHIR_VERSIONS.join(', ')}`, 'fhirVersion');
  return value as FhirVersion;
}

/** The public keys of a private_key_jwt client (access/clientJwks.ts); null when absent. */
export function jwksField(value: unknown): ClientJwks | null {
  if (isAbsent(value)) return null;
  const checked = checkClientJwks(value);
  if ('error' in checked) throw badRequest(checked.error, 'jwks');
  return checked.jwks;
}

/** A token family when given, else undefined (an operation on both). */
export function optionalFamily(value: unknown): ClientFamily | undefined {
  return isAbsent(value) || value === '' ? undefined : familyField(value);
}

export function familyField(value: unknown): ClientFamily {
  if (!CLIENT_FAMILIES.includes(value as ClientFamily)) throw badRequest(`'family' must be one of ${CLIENT_FAMILIES.join(', ')}`, 'family');
  return value as ClientFamily;
}

/** `Organization/<id>` (DESIGN §3.7: the source organisation of resources whose patient names none); null when absent. */
export function sourceOrgField(value: unknown): string | null {
  if (isAbsent(value)) return null;
  if (typeof value !== 'string' || !ORGANIZATION_REFERENCE.test(value)) {
    throw badRequest(`'defaultSourceOrg' must be a reference of the form Organization/<id>, not ${JSON.stringify(value)}`, 'defaultSourceOrg');
  }
  return value;
}

export function booleanField(value: unknown, field: string): boolean {
  if (typeof value !== 'boolean') throw badRequest(`'${field}' must be true or false`, field);
  return value;
}

/**
 * Scopes as OAuth writes them (one space-separated string, RFC 6749 §3.3) or as a list of such strings (a
 * scope token has no space, so `["a b"]` is read as `a b` is: the same input gets the same answer from every
 * door); each must be a SMART scope (`system/*.cruds`, `system/Patient.rs`…), all the token endpoint grants.
 */
export function scopesField(value: unknown): string[] {
  const parts = typeof value === 'string' ? [value] : value;
  if (!Array.isArray(parts) || parts.some((s) => typeof s !== 'string')) {
    throw badRequest(`'scopes' must be a space-separated string or a list of strings`, 'scopes');
  }
  const list = (parts as string[]).flatMap((s) => s.split(' ')).filter((s) => s !== '');
  const bad = list.filter((s) => !isSmartScope(s));
  if (bad.length) {
    throw badRequest(
      `'scopes': ${bad.map((s) => JSON.stringify(s)).join(', ')} ${bad.length > 1 ? 'are not SMART scopes' : 'is not a SMART scope'} (e.g. system/*.cruds, system/Patient.rs)`,
      'scopes',
    );
  }
  if (list.length === 0) throw badRequest(`'scopes' must name at least one scope`, 'scopes');
  return [...new Set(list)];
}

export function labelField(value: unknown): string {
  if (!(PRIVACY_LABELS as readonly unknown[]).includes(value)) throw badRequest(`'label' must be one of ${PRIVACY_LABELS.join(', ')}`, 'label');
  return value as string;
}

/** A duration in milliseconds, from a number or its decimal text (a query string). */
export function millisecondsField(value: unknown, field: string, fallback: number): number {
  if (isAbsent(value) || value === '') return fallback;
  const n = typeof value === 'string' ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isFinite(n) || n < 0) throw badRequest(`'${field}' must be a number of milliseconds`, field);
  return n;
}

/** A team's alias: how a message names the team ($process-message team-alias); null when absent. */
const ALIAS = /^[A-Za-z0-9][A-Za-z0-9\-_.]{0,63}$/;
export function aliasField(value: unknown): string | null {
  if (isAbsent(value)) return null;
  if (typeof value !== 'string' || !ALIAS.test(value)) {
    throw badRequest(`'alias' must be 1 to 64 letters, digits, '-', '_' or '.', starting with a letter or digit`, 'alias');
  }
  return value;
}
