/**
 * The FHIR `id` datatype (R4 datatypes.html#id): 1 to 64 characters of A-Z, a-z, 0-9, '-' and '.'. Ids are
 * checked in every layer (REST paths, admin and consent input, the search index's references, the aggregator's
 * reference rules, GraphQL `Reference.resource`), and what one layer accepts as an id another must not refuse,
 * so the pattern is written here once. No flags: the expressions are shared, and `g` or `y` would give them
 * state between calls.
 */

/** An id, unanchored and without groups, to embed in larger patterns (`Patient/${ID_SOURCE}`). */
export const ID_SOURCE = /[A-Za-z0-9\-.]{1,64}/.source;

/** A whole text that is an id. */
export const ID = new RegExp(`^${ID_SOURCE}$`);

const PATIENT_REFERENCE = new RegExp(`^Patient/(${ID_SOURCE})$`);

/** The id of a relative reference `Patient/[id]`; undefined for anything else (absolute, versioned, another type). */
export function relativePatientId(reference: string): string | undefined {
  return PATIENT_REFERENCE.exec(reference)?.[1];
}
