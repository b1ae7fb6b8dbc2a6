/**
 * Who is calling, as established by a verified token (or the admin credential). Every door builds one
 * and hands it to the services; nothing below the doors looks at HTTP headers.
 */
export type TokenFamily = 'fhir' | 'legacy';
export const TOKEN_FAMILIES: readonly TokenFamily[] = ['fhir', 'legacy'];

export interface Caller {
  family: TokenFamily | 'admin';
  clientId: string;
  /** The customer whose client this is; absent only for the admin. */
  customerId?: string;
  /** Granted scopes, e.g. `system/*.cruds` (SMART App Launch v2 scope syntax). */
  scopes: string[];
  admin: boolean;
  /** When the credential stops being valid (seconds since the epoch), if it does. */
  expiresAt?: number;
  /** The customer's organisation the client acts for (token claim `org`). */
  organizationId?: string;
  /** The team the client is bound to, if any (claim `team`): a team's web UI. */
  teamId?: string;
  /** The practitioner the client is bound to, if any (claim `practitioner`): a practitioner-facing app. */
  practitionerId?: string;
  /** A patient-scoped token (NHS Login): the aggregated Patient it speaks for (claim `patient`). */
  patientId?: string;
  /** An emergency access asserted for one patient (claim `btg`), until `until` (seconds since the epoch). */
  breakGlass?: { patientId: string; reason: string; until: number };
  /** The network address the request came from (the door sets it; the audit log records it). */
  address?: string;
}

declare const authorised: unique symbol;

/**
 * A caller the authorisation point (src/service/authorization.ts) has checked for one store: token family,
 * revocation and endpoint ownership. Only that module makes one, and a FhirService takes nothing less.
 */
export type AuthorisedCaller = Caller & { readonly [authorised]: true };

/**
 * The token of an `Authorization: Bearer <token>` header (RFC 6750 §2.1); the scheme is case-insensitive.
 * Undefined when there is no header or it is not a Bearer credential.
 */
export function bearerToken(authorization?: string): string | undefined {
  if (!authorization) return undefined;
  const match = /^Bearer[ ]+([A-Za-z0-9\-._~+/]+=*)\s*$/i.exec(authorization);
  return match?.[1];
}
