import { exportParameters } from '../fhir/exportParameters';
import { badRequest, methodNotAllowed } from '../fhir/outcome';
import type { ExportRequest } from '../service/bulkExport';
import type { AggregatedContext } from './aggregatedRoutes';
import { parsePrefer } from './fhirHttp';
import type { RouteHandler } from './routeTable';

/**
 * The Bulk Data kick-off (bulkdata export.html#bulk-data-kick-off-request): `[base]/$export`,
 * `Patient/$export` and `Group/[id]/$export` on the aggregated endpoint. It needs `Prefer: respond-async` and
 * answers 202 with the status URL in `Content-Location`; the export runs in the background
 * (service/bulkExport.ts).
 *
 * GET takes the parameters in its query; POST in a FHIR Parameters body (fhir/exportParameters.ts), and only
 * there: a POST with a query is refused rather than read half. `patient` is defined for POST only (the IG's
 * table: "POST requests only"), so a GET naming it is a 400: ignoring it would export every patient.
 * `Prefer: handling=strict` makes a parameter the server does not support a 400; the default is lenient, as
 * for a search.
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
  let parameters: [string, string][];
  if (req.method === 'POST') {
    const [inUrl] = req.query[0] ?? [];
    if (inUrl !== undefined) throw badRequest(`A POST kick-off takes its parameters in its Parameters body, not in the URL ('${inUrl}')`, inUrl);
    parameters = exportParameters(req.body, ctx.baseUrl);
  } else {
    if (req.query.some(([k]) => k === 'patient')) throw badRequest('patient is a parameter of a POST kick-off only (in a Parameters body)', 'patient');
    parameters = req.query;
  }
  const query = req.method === 'POST' ? '' : new URLSearchParams(req.query).toString();
  const id = await ctx.bulk.kickOff(ctx.service, ctx.supported, {
    url: `${ctx.baseUrl}/${req.path}${query ? `?${query}` : ''}`,
    parameters,
    handling: parsePrefer(req.headers.prefer).handling ?? 'lenient',
    baseUrl: ctx.baseUrl,
    level,
    ...(level === 'group' ? { group: p.id } : {}),
  });
  return { status: 202, headers: { 'Content-Location': `${ctx.baseUrl}/$export-status/${id}` } };
};
