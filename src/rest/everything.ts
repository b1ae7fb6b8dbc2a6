import { badRequest } from '../fhir/outcome';
import type { Bundle } from '../fhir/types';
import { replacedByOutcome } from '../service/survivingPatients';
import { ok } from './fhirHttp';
import type { AggregatedContext } from './aggregatedRoutes';
import type { RouteHandler } from './routeTable';

/**
 * `GET Patient/[id]/$everything` on the aggregated endpoint (R4 patient-operation-everything.html): the
 * patient's compartment as the caller may see it, paged with `next` links (`_count`, `_since`, `_type`).
 * The compartment is every aggregated resource whose access row names the patient, the Patient included.
 * An id absorbed by a merge answers with its survivor's compartment, and every page says so in an entry of
 * search mode `outcome` (an information issue: service/survivingPatients.ts); its links keep the id asked for.
 */
const DEFAULT_COUNT = 100;
const MAX_COUNT = 1000;

export const everything: RouteHandler<AggregatedContext> = async (req, p, ctx) => {
  if (p.type !== 'Patient') throw badRequest(`$everything is a Patient operation, not ${p.type}`);
  const get = (name: string) => req.query.find(([k]) => k === name)?.[1];
  const countText = get('_count');
  const count = countText === undefined ? DEFAULT_COUNT : Number(countText);
  if (!Number.isInteger(count) || count < 1) throw badRequest(`_count must be a positive integer, got '${countText}'`, '_count');
  const sinceText = get('_since');
  const since = sinceText === undefined ? undefined : new Date(sinceText);
  if (since && Number.isNaN(since.getTime())) throw badRequest(`_since must be an instant, got '${sinceText}'`, '_since');
  const after = get('_cursor');
  if (after !== undefined && !/^\d{1,19}$/.test(after)) throw badRequest(`_cursor '${after}' is not one this server issued`, '_cursor');
  const listed = (get('_type') ?? '')
    .split(',')
    .map((t) => t.trim())
    .filter((t) => t !== '');
  const types = listed.length ? listed.filter((t) => ctx.supported.has(t)) : [...ctx.supported];
  const page = types.length
    ? await ctx.service.everything(p.id, { types, listed: listed.length > 0, since, after, count: Math.min(count, MAX_COUNT), baseUrl: ctx.baseUrl })
    : { resources: [], next: undefined, patient: p.id };
  const keep = req.query.filter(([k]) => k !== '_cursor' && k !== '_count');
  const link = (cursor?: string) => {
    const pairs: [string, string][] = [...keep, ['_count', String(Math.min(count, MAX_COUNT))]];
    if (cursor) pairs.push(['_cursor', cursor]);
    return `${ctx.baseUrl}/Patient/${p.id}/$everything?${new URLSearchParams(pairs).toString()}`;
  };
  const links = [{ relation: 'self', url: link(after) }];
  if (page.next) links.push({ relation: 'next', url: link(page.next) });
  const bundle: Bundle = {
    resourceType: 'Bundle',
    type: 'searchset',
    link: links,
    entry: [
      ...(page.patient === p.id ? [] : [{ resource: replacedByOutcome(p.id, page.patient, '$everything'), search: { mode: 'outcome' as const } }]),
      ...page.resources.map((resource) => ({ fullUrl: `${ctx.baseUrl}/${resource.resourceType}/${resource.id}`, resource, search: { mode: 'match' as const } })),
    ],
  };
  return ok(bundle);
};
