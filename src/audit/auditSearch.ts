import { badRequest } from '../fhir/outcome';
import type { Bundle, Resource } from '../fhir/types';
import { parseDateRange } from '../search/dateRange';
import type { Sql } from '../store/sql';
import { auditEventResource, type StoredActivity } from './auditEvent';

/**
 * Searching the audit log (auditLog.ts): by aggregated Patient (`patient`, the GIN index on patient_ids),
 * by when (`date` with FHIR prefixes eq/ge/gt/le/lt, repeatable), by client (`agent`) and by action, newest
 * first, a page at a time (`_count`, and a keyset `_cursor` the next link carries). The SQL is built from
 * the parsed query's fields; every value is a bound parameter.
 */
export interface AuditQuery {
  patient?: string;
  dates: { prefix: 'eq' | 'ge' | 'gt' | 'le' | 'lt'; low: Date; high: Date; text: string }[];
  agent?: string;
  action?: string;
  count: number;
  cursor?: { recorded: string; id: string };
}

const ACTIONS = new Set(['C', 'R', 'U', 'D', 'E']);
const MAX_COUNT = 1000;

function single(value: unknown, name: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value === '') throw badRequest(`'${name}' must be given once, with a value`, name);
  return value;
}

/** The query of GET /admin/AuditEvent (or the GraphQL arguments), checked: a bad value is a 400 naming it. */
export function auditQueryOf(raw: Record<string, unknown>): AuditQuery {
  const known = new Set(['patient', 'date', 'agent', 'action', '_count', '_cursor']);
  for (const name of Object.keys(raw)) if (!known.has(name)) throw badRequest(`Unknown audit search parameter '${name}'; use patient, date, agent, action, _count`, name);
  const dates = (raw.date === undefined ? [] : Array.isArray(raw.date) ? raw.date : [raw.date]).map((d: unknown) => {
    const text = String(d);
    const prefixed = /^(eq|ge|gt|le|lt)/.exec(text);
    const prefix = (prefixed?.[1] ?? 'eq') as AuditQuery['dates'][number]['prefix'];
    const range = parseDateRange(text.slice(prefixed ? 2 : 0));
    if (!range) throw badRequest(`'date' must be a FHIR date or instant with an optional prefix (ge2026-12-01), got '${text}'`, 'date');
    return { prefix, ...range, text };
  });
  const action = single(raw.action, 'action');
  if (action !== undefined && !ACTIONS.has(action)) throw badRequest(`'action' must be one of C, R, U, D, E; got '${action}'`, 'action');
  const countText = single(raw._count, '_count');
  const count = countText === undefined ? 50 : Number(countText);
  if (!Number.isInteger(count) || count < 1 || count > MAX_COUNT) throw badRequest(`'_count' must be an integer from 1 to ${MAX_COUNT}`, '_count');
  const cursorText = single(raw._cursor, '_cursor');
  let cursor: AuditQuery['cursor'];
  if (cursorText !== undefined) {
    const [recorded, id] = Buffer.from(cursorText, 'base64url').toString().split('|');
    if (!recorded || !id || Number.isNaN(Date.parse(recorded))) throw badRequest(`'_cursor' is not one this server handed out`, '_cursor');
    cursor = { recorded, id };
  }
  return { patient: single(raw.patient, 'patient'), dates, agent: single(raw.agent, 'agent'), action, count, cursor };
}

export interface AuditRow {
  id: string;
  recorded: Date;
  body: Resource;
}

/** An audit_event row: events recorded before the log kept activities (auditEvent.ts) have their AuditEvent in `body`. */
interface StoredRow {
  id: string;
  recorded: Date;
  outcome: string;
  patient_ids: string[];
  body: Resource | null;
  activity: StoredActivity | null;
}

function auditRow(row: StoredRow): AuditRow {
  const body = row.body ?? auditEventResource({ id: row.id, recorded: row.recorded, outcome: row.outcome, patientIds: row.patient_ids, activity: row.activity as StoredActivity });
  return { id: row.id, recorded: row.recorded, body };
}

export class AuditSearch {
  constructor(private readonly sql: Sql) {}

  /** One page of matches (newest first), and the cursor of the next when there is one. */
  async find(query: AuditQuery): Promise<{ rows: AuditRow[]; next?: string }> {
    const params: unknown[] = [];
    const bind = (v: unknown) => (params.push(v), `$${params.length}`);
    const where: string[] = [];
    if (query.patient !== undefined) where.push(`"patient_ids" @> ARRAY[${bind(query.patient)}]::text[]`);
    for (const d of query.dates) {
      // FHIR date prefixes over the value's implied interval [low, high] (search.html#prefix).
      if (d.prefix === 'eq') where.push(`"recorded" BETWEEN ${bind(d.low.toISOString())}::timestamptz AND ${bind(d.high.toISOString())}::timestamptz`);
      else if (d.prefix === 'ge') where.push(`"recorded" >= ${bind(d.low.toISOString())}::timestamptz`);
      else if (d.prefix === 'gt') where.push(`"recorded" > ${bind(d.high.toISOString())}::timestamptz`);
      else if (d.prefix === 'le') where.push(`"recorded" <= ${bind(d.high.toISOString())}::timestamptz`);
      else where.push(`"recorded" < ${bind(d.low.toISOString())}::timestamptz`);
    }
    if (query.agent !== undefined) where.push(`"client" = ${bind(query.agent)}`);
    if (query.action !== undefined) where.push(`"action" = ${bind(query.action)}`);
    if (query.cursor) where.push(`("recorded", "id") < (${bind(query.cursor.recorded)}::timestamptz, ${bind(query.cursor.id)})`);
    const rows = await this.sql.query<StoredRow[]>(
      `SELECT "id", "recorded", "outcome", "patient_ids", "body", "activity" FROM "audit_event" ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
       ORDER BY "recorded" DESC, "id" DESC LIMIT ${bind(query.count + 1)}`,
      ...params,
    );
    const page = rows.slice(0, query.count).map(auditRow);
    const last = page[page.length - 1];
    const next = rows.length > query.count && last ? Buffer.from(`${new Date(last.recorded).toISOString()}|${last.id}`).toString('base64url') : undefined;
    return { rows: page, next };
  }

  /** A searchset Bundle of the page, with a `next` link carrying the same criteria. */
  async search(query: AuditQuery, baseUrl: string): Promise<Bundle> {
    const { rows, next } = await this.find(query);
    const link = (cursor?: string) => {
      const q = new URLSearchParams();
      if (query.patient !== undefined) q.append('patient', query.patient);
      for (const d of query.dates) q.append('date', d.text);
      if (query.agent !== undefined) q.append('agent', query.agent);
      if (query.action !== undefined) q.append('action', query.action);
      q.append('_count', String(query.count));
      if (cursor) q.append('_cursor', cursor);
      return `${baseUrl}/AuditEvent?${q}`;
    };
    return {
      resourceType: 'Bundle',
      type: 'searchset',
      link: [
        { relation: 'self', url: link(query.cursor && Buffer.from(`${query.cursor.recorded}|${query.cursor.id}`).toString('base64url')) },
        ...(next ? [{ relation: 'next', url: link(next) }] : []),
      ],
      entry: rows.map((r) => ({ fullUrl: `${baseUrl}/AuditEvent/${r.id}`, resource: r.body, search: { mode: 'match' } })),
    } as Bundle;
  }
}

/** One AuditEvent in the shape GraphQL lists it (auditSchema.ts): who, on whose behalf, what, when, why. */
export interface AuditSummary {
  id: string;
  recorded: string;
  subtype: string;
  action: string;
  outcome: string;
  agent: string;
  onBehalfOf: string[];
  what: string[];
  purpose: string | null;
  detail: string | null;
}

type Body = {
  subtype?: { code?: string }[];
  action?: string;
  outcome?: string;
  outcomeDesc?: string;
  agent?: {
    who?: { identifier?: { value?: string }; reference?: string };
    type?: { coding?: { code?: string }[] };
    purposeOfUse?: { text?: string; coding?: { code?: string }[] }[];
  }[];
  entity?: { what?: { reference?: string } }[];
};

export function summarise(row: AuditRow): AuditSummary {
  const body = row.body as unknown as Body;
  const agents = body.agent ?? [];
  const who = (a: Body['agent'] extends (infer T)[] | undefined ? T : never) => a.who?.identifier?.value ?? a.who?.reference ?? '';
  const client = agents.find((a) => a.type?.coding?.[0]?.code === '110153');
  const behalf = agents.filter((a) => ['IRCP', 'RESP'].includes(a.type?.coding?.[0]?.code ?? ''));
  const purpose = agents.flatMap((a) => a.purposeOfUse ?? [])[0];
  return {
    id: row.id,
    recorded: new Date(row.recorded).toISOString(),
    subtype: body.subtype?.[0]?.code ?? '',
    action: body.action ?? '',
    outcome: body.outcome ?? '',
    agent: client ? who(client) : '',
    onBehalfOf: behalf.map(who),
    what: (body.entity ?? []).flatMap((e) => (e.what?.reference ? [e.what.reference] : [])),
    purpose: purpose ? (purpose.text ?? purpose.coding?.[0]?.code ?? null) : null,
    detail: body.outcomeDesc ?? null,
  };
}
