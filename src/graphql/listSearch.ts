import { OperationOutcomeError, operationOutcome } from '../fhir/outcome';
import type { Bundle, Resource } from '../fhir/types';

/**
 * `XList` semantics (graphql.html#searching): a List returns every match or an error, never a silently
 * cut page. Without `_count` we ask for the largest page search serves and refuse when there is more;
 * with `_count` the client chose a page. `_offset` is applied here, so it works in every sort order.
 */
export const LIST_MAX = 1000;

export interface ListPage {
  count?: number;
  offset?: number;
}

/** The `_count` to ask search for to be able to answer `page`. */
export function listCountParam(type: string, page: ListPage): string {
  if (page.count === undefined) return String(LIST_MAX);
  const end = (page.offset ?? 0) + page.count;
  if (end > LIST_MAX) throw tooMany(type);
  return String(end);
}

export function hasNext(bundle: Bundle): boolean {
  return !!bundle.link?.some((l) => l.relation === 'next');
}

export function tooMany(type: string): OperationOutcomeError {
  return new OperationOutcomeError(
    400,
    operationOutcome([
      { severity: 'error', code: 'too-costly', diagnostics: `More than ${LIST_MAX} ${type} resources match: give _count (and _offset), or use ${type}Connection to page` },
    ]),
  );
}

/** The matches of a searchset, cut to `page`; an error when the List would be incomplete. */
export function listOf(type: string, bundle: Bundle, page: ListPage): Resource[] {
  if (page.count === undefined && hasNext(bundle)) throw tooMany(type);
  return slicePage(matches(bundle), page);
}

export function matches(bundle: Bundle): Resource[] {
  return (bundle.entry ?? []).filter((e) => e.resource && (e.search?.mode ?? 'match') === 'match').map((e) => e.resource as Resource);
}

export function slicePage<T>(items: T[], page: ListPage): T[] {
  const start = page.offset ?? 0;
  return items.slice(start, page.count === undefined ? undefined : start + page.count);
}
