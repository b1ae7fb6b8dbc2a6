import { badRequest, methodNotAllowed, notImplemented } from '../fhir/outcome';
import type { ExportRequest } from '../service/bulkExport';
import type { AggregatedContext } from './aggregatedRoutes';
import type { RouteHandler } from './routeTable';

/**
 * The Bulk Data kick-off (bulkdata export.html#bulk-data-kick-off-request): `[base]/$export` and
 * `Patient/$export` on the aggregated endpoint. It needs `Prefer: respond-async` and answers 202 with the
 * status URL in `Content-Location`; the export runs in the background (service/bulkExport.ts).
 */
export const exportKickOff: RouteHandler<AggregatedContext> = async (req, p, ctx) => {
  if (!ctx.bulk) throw methodNotAllowed('$export is not available here');
  if (!/(^|[,;\s])respond-async($|[,;\s])/.test(req.headers.prefer ?? '')) throw badRequest('$export needs the header Prefer: respond-async', 'Prefer');
  let level: ExportRequest['level'];
  if (!p.type) level = 'system';
  else if (p.type === 'Patient' && !p.id) level = 'patient';
  else throw badRequest(`$export is defined at system level and on Patient, not on '${req.path}'`);
  const query = new URLSearchParams(req.query).toString();
  const id = await ctx.bulk.kickOff(ctx.service, ctx.supported, { url: `${ctx.baseUrl}/${req.path}${query ? `?${query}` : ''}`, query: req.query, level });
  return { status: 202, headers: { 'Content-Location': `${ctx.baseUrl}/$export-status/${id}` } };
};

/**
 * `Group/[id]/$export` (bulkdata export.html#endpoint---group-of-patients) is not offered: Group is not an
 * aggregated type, so the aggregated record has no Group to name. A customer's Group lists that customer's
 * upstream Patients, which merge with other customers' into aggregated Patients; whose membership an
 * aggregated Group would then carry, and who may see it, is not decided (DESIGN §3 has no rule for it).
 * The answer is the same for every id and every caller (so it tells nothing about any Group), and names
 * what to use instead.
 */
export const groupExportKickOff: RouteHandler<AggregatedContext> = async () => {
  throw notImplemented(
    'Group-level $export is not available on the aggregated endpoint: Group is not an aggregated type, so no Group can be named here. ' +
      'Use Patient/$export (all patient compartments the caller may see) or [base]/$export, narrowed with _type and _typeFilter.',
  );
};
