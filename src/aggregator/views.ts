import type { SqlClient } from '../store/sql';
import type { Resource } from '../fhir/types';
import { elementSources, MERGED_TYPES, type Member } from './rules';

/**
 * Read models of the aggregation for the GraphQL views: an aggregated resource's upstream members, the
 * rule that grouped them and which member supplied each single-valued element.
 *
 * A caller sees its own customer's members only. That another customer holds data on a patient is
 * itself confidential, so the others are a bare count (`otherSources`), and an element one of them
 * supplied names no endpoint and no upstream id.
 */
export interface MemberView {
  endpoint: string;
  customer: string;
  upstreamType: string;
  upstreamId: string;
  upstreamVersion: number | null;
  lastUpdated: string | null;
}

export interface AggregationView {
  resourceType: string;
  id: string;
  rule: string;
  /** The caller's own members. */
  members: MemberView[];
  /** Members from other customers' endpoints: counted, never named. */
  otherSources: number;
  /** `endpoint` and `upstreamId` are null where another customer's member supplied the element. */
  elementSources: { element: string; endpoint: string | null; upstreamId: string | null }[];
}

export class AggregationViews {
  constructor(private readonly sql: SqlClient) {}

  /** The view of the aggregated `type/aggId` for a caller of customer `callerCustomerId`. */
  async view(type: string, aggId: string, callerCustomerId: string | undefined): Promise<AggregationView> {
    const rows = await this.sql.query<{ store: string; res_id: string; content: Resource; upstream_updated: Date | null; customer_id: string; version_id: number | null }[]>(
      `SELECT m.store, m.res_id, m.content, m.upstream_updated, e.customer_id, r.version_id
         FROM agg_member m JOIN endpoint e ON e.id = m.store
         LEFT JOIN resource r ON r.store = m.store AND r.type = m.type AND r.id = m.res_id
        WHERE m.type = $1 AND m.agg_id = $2 AND m.status = 'included' ORDER BY m.joined_at, m.store, m.res_id`,
      type,
      aggId,
    );
    const members: Member[] = rows.map((r) => ({
      resource: r.content,
      lastUpdated: r.upstream_updated ? new Date(r.upstream_updated).toISOString() : '',
      store: r.store,
      id: r.res_id,
    }));
    // A caller without a customer (none today) sees no member by name.
    const visible = rows.filter((r) => callerCustomerId !== undefined && r.customer_id === callerCustomerId);
    const visibleStores = new Set(visible.map((r) => r.store));
    return {
      resourceType: type,
      id: aggId,
      rule: MERGED_TYPES[type] ? `grouped by ${MERGED_TYPES[type]}` : 'copied one-to-one',
      members: visible.map((r) => ({
        endpoint: r.store,
        customer: r.customer_id,
        upstreamType: type,
        upstreamId: r.res_id,
        upstreamVersion: r.version_id === null ? null : Number(r.version_id),
        lastUpdated: r.upstream_updated ? new Date(r.upstream_updated).toISOString() : null,
      })),
      otherSources: rows.length - visible.length,
      // Provenance is computed over every member (it is what the merge did), then hidden members are masked.
      elementSources: MERGED_TYPES[type]
        ? elementSources(type, members).map((s) =>
            visibleStores.has(s.store) ? { element: s.element, endpoint: s.store, upstreamId: s.id } : { element: s.element, endpoint: null, upstreamId: null },
          )
        : [],
    };
  }

  async status(store: string, type: string, id: string): Promise<{ status: string; reason: string | null; expression: string | null; aggregatedId: string | null } | null> {
    const [row] = await this.sql.query<{ status: string; reason: string | null; expression: string | null; agg_id: string | null }[]>(
      `SELECT status, reason, expression, agg_id FROM agg_member WHERE store = $1 AND type = $2 AND res_id = $3`,
      store,
      type,
      id,
    );
    return row ? { status: row.status, reason: row.reason, expression: row.expression, aggregatedId: row.agg_id } : null;
  }
}
