/**
 * The JSON text a read serves for a stored resource, assembled from PostgreSQL's own text of its jsonb without
 * parsing it in JavaScript (bulk export writes millions of them: parsing and re-serialising each cost more than
 * everything else together).
 *
 * A read parses the stored jsonb (decimals exact, fhir/losslessJson.ts), puts `resourceType`, `id` and `meta`
 * first (`servedOrder`) and serialises it. PostgreSQL's text of the same jsonb already has every number's stored
 * digits and every other member in the same order, so the served text is `resourceType`, `id` and `meta`
 * followed by the text of the rest. Only the white space differs (PostgreSQL writes `", "` and `": "`), which
 * JSON does not give a meaning. A row's `type` and `id` columns are written from its content's (the
 * repository inserts them together), so they stand in for the members. The rare row holding numbers jsonb would
 * print differently (an exponent, `-0`: stored as marked strings, fhir/losslessJson.ts) is parsed and written again.
 */
import { servedStoredText } from '../fhir/losslessJson';

export interface StoredJsonParts {
  type: string;
  id: string;
  /** `meta` as jsonb text; null when the resource has none. */
  meta: string | null;
  /** The content without `resourceType`, `id` and `meta`, as jsonb text: `{}` or `{"a": …, …}`. */
  rest: string;
}

/** The members a read puts first, in its order (resourceRepository.ts `servedOrder`). */
export const LEADING_MEMBERS = ['resourceType', 'id', 'meta'];

export function servedJsonText(parts: StoredJsonParts): string {
  let text = `{"resourceType": ${JSON.stringify(parts.type)}, "id": ${JSON.stringify(parts.id)}`;
  if (parts.meta !== null) text += `, "meta": ${parts.meta}`;
  return servedStoredText(parts.rest.length > 2 ? `${text}, ${parts.rest.slice(1)}` : `${text}}`);
}
