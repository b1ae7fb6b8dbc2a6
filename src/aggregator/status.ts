import type { SqlClient } from '../store/sql';
import { aggregatedType } from './aggregatedType';
import { operationOutcome, type OperationOutcome } from '../fhir/outcome';

/** `$aggregation-status`: what the aggregator made of one upstream resource, for its owner. */
export async function aggregationStatus(sql: SqlClient, store: string, type: string, id: string): Promise<OperationOutcome> {
  const [pending] = await sql.query<{ n: bigint; parked: bigint; error: string | null }[]>(
    `SELECT count(*) AS n, count(*) FILTER (WHERE parked) AS parked, max(last_error) AS error FROM agg_outbox WHERE store = $1 AND type = $2 AND res_id = $3`,
    store,
    type,
    id,
  );
  if (Number(pending.parked) > 0) {
    return operationOutcome([
      { severity: 'error', code: 'exception', diagnostics: `Aggregation of ${type}/${id} failed repeatedly and is parked: ${(pending.error ?? '').split('\n')[0]}` },
    ]);
  }
  if (Number(pending.n) > 0) return operationOutcome([{ severity: 'information', code: 'informational', diagnostics: `Aggregation of ${type}/${id} is pending` }]);
  const [row] = await sql.query<{ status: string; reason: string | null; expression: string | null; agg_id: string | null }[]>(
    `SELECT status, reason, expression, agg_id FROM agg_member WHERE store = $1 AND type = $2 AND res_id = $3`,
    store,
    type,
    id,
  );
  if (!row) return operationOutcome([{ severity: 'information', code: 'informational', diagnostics: `${type}/${id} has not been aggregated` }]);
  if (row.status === 'included') {
    return operationOutcome([{ severity: 'information', code: 'informational', diagnostics: `${type}/${id} is aggregated as ${aggregatedType(type)}/${row.agg_id}` }]);
  }
  return operationOutcome([
    {
      severity: 'error',
      code: 'business-rule',
      diagnostics: `${type}/${id} is excluded from the aggregated record: ${row.reason}`,
      ...(row.expression ? { expression: [row.expression] } : {}),
    },
  ]);
}
