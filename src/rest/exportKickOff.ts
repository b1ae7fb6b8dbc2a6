import { badRequest, methodNotAllowed } from '../fhir/outcome';
import type { ExportRequest } from '../service/bulkExport';
import type { AggregatedContext } from './aggregatedRoutes';
import type { RouteHandler } from './routeTable';

/**
 * The Bulk Data kick-off (bulkdata export.html#bulk-data-kick-off-request): `[base]/$export`,
 * `Patient/$export` and `Group/[id]/$export` on the aggregated endpoint. It needs `Prefer: respond-async` and
 * answers 202 with the status URL in `Content-Location`; the export runs in the background
 * (service/bulkExport.ts).
 *
 * Group-level export names an aggregated Group, so it exists only where Group is an aggregated type
 * (AGGREGATED_TYPES=+Group): customers' Groups are then copied like any unmerged type, their members
 * rewritten to the merged Patients. Elsewhere the route table answers it as it answers `GET Group/[id]`
 * there: 404, Group is not part of the aggregated record (the same for every id and caller).
 */
export const exportKickOff: RouteHandler<AggregatedContext> = async (req, p, ctx) => {
  if (!ctx.bulk) throw methodNotAllowed('$export is not available here');
  if (!/(^|[,;\s])respond-async($|[,;\s])/.test(req.headers.prefer ?? '')) throw badRequest('$export needs the header Prefer: respond-async', 'Prefer');
  let level: ExportRequest['level'];
  if (!p.type) level = 'system';
  else if (p.type === 'Patient' && !p.id) level = 'patient';
  else if (p.type === 'Group' && p.id) level = 'group';
  else throw badRequest(`$export is defined at system level, on Patient and on Group/[id], not on '${req.path}'`);
  const query = new URLSearchParams(req.query).toString();
  const id = await ctx.bulk.kickOff(ctx.service, ctx.supported, {
    url: `${ctx.baseUrl}/${req.path}${query ? `?${query}` : ''}`,
    query: req.query,
    level,
    ...(level === 'group' ? { group: p.id } : {}),
  });
  return { status: 202, headers: { 'Content-Location': `${ctx.baseUrl}/$export-status/${id}` } };
};
