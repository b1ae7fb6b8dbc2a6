import { randomUUID } from 'node:crypto';
import type { Sql, SqlClient, Tx } from './sql';
import { badRequest, conflict, gone, notFound, preconditionFailed } from '../fhir/outcome';
import { parseStoredJson, stringifyStoredJson } from '../fhir/losslessJson';
import type { Resource } from '../fhir/types';
import type { AccessFilter } from '../service/ports';
import { appendAccessFilter } from './accessSql';
import { compactServedText } from './compactServedText';
import { preparedStatement } from './preparedStatements';

export type { Sql, Tx } from './sql';

export interface StoredVersion {
  pk: bigint;
  store: string;
  type: string;
  id: string;
  versionId: number;
  lastUpdated: Date;
  deleted: boolean;
  /** The resource as served, `meta.versionId` and `meta.lastUpdated` included; null for a delete. */
  resource: Resource | null;
  /**
   * The resource's JSON as a read serves it, when the store read it as text (a read by key: `read`) and could
   * write it without parsing (compactServedText.ts); the door sends it as it is. Undefined otherwise.
   */
  readonly json?: string;
}

export type ChangeKind = 'create' | 'update' | 'delete';

/** A stored resource whose search-index rows another one's are built from. */
export interface IndexSource {
  pk: bigint;
  store: string;
}

export interface ResourceChange extends StoredVersion {
  kind: ChangeKind;
  /**
   * A created copy of another R4 resource of the same type (an aggregated copy of its upstream): that resource,
   * whose search-index rows the copy shares except those of its references and meta (search/indexer.ts).
   */
  indexedLike?: IndexSource;
}

/**
 * Runs inside the write's own transaction, after the row is written: search indexing and the aggregation
 * outbox hang here so that a write, its index rows and its work item commit or fail together.
 */
export type WriteHook = ((tx: Tx, change: ResourceChange) => Promise<void>) & {
  /** Optional batched form for bulk creates: one call for many changes. */
  many?: (tx: Tx, changes: ResourceChange[]) => Promise<void>;
};

export interface HistoryOptions {
  count: number;
  /** Only versions at or after this instant (`_since`). */
  since?: Date;
  /** Only versions at or before this instant (`_at`-style upper bound). */
  before?: Date;
  /** Opaque keyset cursor returned as `next` by a previous page. */
  cursor?: string;
  /** Only versions of resources the caller may see (aggregated endpoint). */
  accessFilter?: AccessFilter;
}

export interface HistoryPage {
  entries: StoredVersion[];
  next?: string;
  total?: number;
}

interface Row {
  pk: bigint;
  store: string;
  type: string;
  id: string;
  version_id: number;
  last_updated: Date;
  deleted: boolean;
  content: Resource | null;
}

/** A row read with its content as PostgreSQL's text of the jsonb (`textRead`). */
type TextRow = Omit<Row, 'content'> & { content: string | null };

const VERSION_COLUMNS = 'pk, store, type, id, version_id, last_updated, deleted';
const COLUMNS = `${VERSION_COLUMNS}, content`;
const BY_KEY = 'FROM resource WHERE store = $1 AND type = $2 AND id = $3';
/** The current row of a resource by its key. */
const CURRENT = preparedStatement(`SELECT ${COLUMNS} ${BY_KEY}`);
const CURRENT_FOR_UPDATE = preparedStatement(`${CURRENT} FOR UPDATE`);
/** The same row with the content as text, for reads served without parsing it (`textRead`): the statement of every read. */
const CURRENT_AS_TEXT = preparedStatement(`SELECT ${VERSION_COLUMNS}, content::text AS content ${BY_KEY}`);

/** Moves the current version of row `$1` into history before it is overwritten (a CTE of the UPDATE). */
const SUPERSEDE = `INSERT INTO resource_history (resource_pk, version_id, store, type, id, last_updated, deleted, content)
  SELECT pk, version_id, store, type, id, last_updated, deleted, content FROM resource WHERE pk = $1`;

/** A row's version, everything but its content. */
function versionOf(row: Omit<Row, 'content'>): Omit<StoredVersion, 'resource' | 'json'> {
  return {
    pk: BigInt(row.pk),
    store: row.store,
    type: row.type,
    id: row.id,
    versionId: Number(row.version_id),
    lastUpdated: new Date(row.last_updated),
    deleted: row.deleted,
  };
}

function toStored(row: Row): StoredVersion {
  return { ...versionOf(row), resource: row.content && servedOrder(row.content) };
}

/**
 * A version read as text: `json` is the served text, made without parsing (compactServedText.ts), and `resource`
 * is parsed only when something asks for it. Both are computed once; a `resource` set afterwards leaves no `json`.
 */
function textRead(row: TextRow): StoredVersion {
  const text = row.content;
  let resource: Resource | null | undefined = text === null ? null : undefined;
  let json: string | null | undefined = text === null ? null : undefined;
  const stored = {
    ...versionOf(row),
    get resource(): Resource | null {
      return (resource ??= servedOrder(parseStoredJson(text as string) as Resource));
    },
    set resource(value: Resource | null) {
      resource = value;
      json = null;
    },
  };
  const served = (): string | undefined => {
    if (json === undefined) json = compactServedText(text as string) ?? null;
    return json ?? undefined;
  };
  // Not enumerable: a copy of the version (`{ ...stored }`) carries its resource, not a text that may no longer match it.
  Object.defineProperty(stored, 'json', { enumerable: false, get: served });
  return stored;
}

/** jsonb keeps keys in its own order; clients expect `resourceType`, `id` and `meta` first. */
export function servedOrder(content: Resource): Resource {
  const { resourceType, id, meta, ...rest } = content;
  return { resourceType, ...(id !== undefined ? { id } : {}), ...(meta !== undefined ? { meta } : {}), ...rest };
}

/**
 * Stamps the server-owned meta elements; everything else in `meta` is the client's. One object built key by key
 * (the same order as `{ resourceType, id, meta, ...rest }`): every created resource passes here.
 */
export function stamp(resource: Resource, id: string, versionId: number, lastUpdated: Date | string): Resource {
  const out: Record<string, unknown> = {
    resourceType: resource.resourceType,
    id,
    meta: { ...(resource.meta ?? {}), versionId: String(versionId), lastUpdated: typeof lastUpdated === 'string' ? lastUpdated : lastUpdated.toISOString() },
  };
  for (const key in resource) if (key !== 'resourceType' && key !== 'id' && key !== 'meta') out[key] = resource[key];
  return out as Resource;
}

/**
 * Versioned resource storage over the `resource` (current versions) and `resource_history` (superseded
 * versions) tables.
 * Every method runs in the caller's transaction when one is given (bundles), else in its own.
 */
export class ResourceRepository {
  constructor(
    private readonly sql: SqlClient,
    private readonly hooks: WriteHook[] = [],
  ) {}

  addHook(hook: WriteHook): void {
    this.hooks.push(hook);
  }

  /** One transaction for several operations (transaction bundles, conditional writes). */
  transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    return this.sql.transaction(fn);
  }

  private inTx<T>(tx: Tx | undefined, fn: (tx: Tx) => Promise<T>): Promise<T> {
    return tx ? fn(tx) : this.transaction(fn);
  }

  /**
   * The current version. `forUpdate` (inside a transaction): the row stays locked until it ends, so a
   * read-modify-write (a patch) cannot be overtaken by another between its read and its write.
   */
  async read(store: string, type: string, id: string, sql: Sql = this.sql, options: { forUpdate?: boolean } = {}): Promise<StoredVersion> {
    // Without a lock the content comes as text, served without parsing unless something asks for the resource.
    const found = options.forUpdate
      ? (await sql.query<Row[]>(CURRENT_FOR_UPDATE, store, type, id)).map(toStored)[0]
      : (await sql.query<TextRow[]>(CURRENT_AS_TEXT, store, type, id)).map(textRead)[0];
    if (!found) throw notFound(`${type}/${id} is not known`);
    if (found.deleted) throw gone(`${type}/${id} was deleted (version ${found.versionId})`);
    return found;
  }

  /** Whether the caller's access filter lets it see the resource row `pk`. */
  async visible(pk: bigint, filter: AccessFilter, sql: Sql = this.sql): Promise<boolean> {
    const params: unknown[] = [pk.toString()];
    const rows = await sql.query<unknown[]>(`SELECT 1 FROM resource r WHERE r.pk = $1::bigint AND ${appendAccessFilter(filter, params)}`, ...params);
    return rows.length > 0;
  }

  /** The current row, deleted or not; undefined when the id never existed. */
  async find(store: string, type: string, id: string, sql: Sql = this.sql): Promise<StoredVersion | undefined> {
    const rows = await sql.query<Row[]>(CURRENT, store, type, id);
    return rows.length ? toStored(rows[0]) : undefined;
  }

  async vread(store: string, type: string, id: string, versionId: number, sql: Sql = this.sql): Promise<StoredVersion> {
    const rows = await sql.query<Row[]>(
      `SELECT ${COLUMNS} ${BY_KEY} AND version_id = $4
       UNION ALL
       SELECT h.resource_pk AS pk, h.store, h.type, h.id, h.version_id, h.last_updated, h.deleted, h.content
         FROM resource r JOIN resource_history h ON h.resource_pk = r.pk AND h.version_id = $4
        WHERE r.store = $1 AND r.type = $2 AND r.id = $3`,
      store,
      type,
      id,
      versionId,
    );
    if (rows.length === 0) throw notFound(`${type}/${id} has no version ${versionId}`);
    const found = toStored(rows[0]);
    if (found.deleted) throw gone(`${type}/${id} version ${versionId} is a deletion`);
    return found;
  }

  /** Creates with a server-assigned id (or the given one, for create-on-PUT paths that checked absence). */
  async create(store: string, resource: Resource, tx?: Tx): Promise<StoredVersion> {
    return this.inTx(tx, async (t) => {
      const id = randomUUID();
      const now = new Date();
      const body = stamp(resource, id, 1, now);
      const pk = (await this.insertCurrent(t, store, body.resourceType, id, 1, now, body)) as bigint;
      return this.record(t, 'create', { pk, store, type: body.resourceType, id, versionId: 1, lastUpdated: now, deleted: false, resource: body });
    });
  }

  /**
   * Creates many new resources with the ids they carry in one statement (plus one per hook): the bulk path
   * of transaction Bundles, whose POST entries get fresh UUIDs. An id that already exists is a 409.
   */
  /** `indexedLike[i]`: see ResourceChange.indexedLike. */
  async createMany(store: string, resources: (Resource & { id: string })[], tx?: Tx, options: { indexedLike?: (IndexSource | undefined)[] } = {}): Promise<StoredVersion[]> {
    if (!resources.length) return [];
    return this.inTx(tx, async (t) => {
      const now = new Date();
      const stamped = now.toISOString();
      const bodies = resources.map((r) => stamp(r, r.id, 1, stamped));
      // The bodies travel as one JSON array: one string through the driver, parsed once by the server.
      // A plain INSERT: an id that exists fails on the unique index (the transaction is lost either way, so
      // there is nothing to gain from ON CONFLICT DO NOTHING, whose speculative insertion costs every row an
      // extra index probe and a confirmation WAL record).
      const rows = await t
        .query<{ pk: bigint; type: string; id: string }[]>(
          `INSERT INTO resource (store, type, id, version_id, last_updated, deleted, content)
           SELECT $1, u.content->>'resourceType', u.content->>'id', 1, $2::timestamptz, false, u.content
             FROM jsonb_array_elements($3::jsonb) WITH ORDINALITY AS u(content, n)
            ORDER BY u.n
           RETURNING pk, type, id`,
          store,
          stamped,
          stringifyStoredJson(bodies),
        )
        .catch((err: unknown) => {
          throw uniqueViolation(err) ?? err;
        });
      const pkOf = new Map(rows.map((r) => [`${r.type}/${r.id}`, BigInt(r.pk)]));
      const changes: ResourceChange[] = bodies.map((body, i) => ({
        kind: 'create',
        ...(options.indexedLike?.[i] !== undefined ? { indexedLike: options.indexedLike[i] } : {}),
        pk: pkOf.get(`${body.resourceType}/${body.id}`) as bigint,
        store,
        type: body.resourceType,
        id: body.id as string,
        versionId: 1,
        lastUpdated: now,
        deleted: false,
        resource: body,
      }));
      for (const hook of this.hooks) {
        if (hook.many) await hook.many(t, changes);
        else for (const change of changes) await hook(t, change);
      }
      return changes.map(({ kind: _kind, indexedLike: _like, ...stored }) => stored);
    });
  }

  /**
   * Update, or create with the client's id when there is none (FHIR create-on-PUT). `ifMatch` is the
   * version the client last saw; a mismatch (or an If-Match on a resource that does not exist) is a 412.
   */
  async update(store: string, resource: Resource & { id: string }, options: { ifMatch?: number } = {}, tx?: Tx): Promise<{ stored: StoredVersion; created: boolean }> {
    return this.inTx(tx, async (t) => {
      const type = resource.resourceType;
      const current = await this.lockCurrent(t, store, type, resource.id);
      if (options.ifMatch !== undefined) {
        if (!current || current.deleted) {
          throw preconditionFailed(`If-Match W/"${options.ifMatch}" given but ${type}/${resource.id} does not exist`);
        }
        if (current.versionId !== options.ifMatch) {
          throw preconditionFailed(`Version conflict: If-Match W/"${options.ifMatch}" but ${type}/${resource.id} is at version ${current.versionId}`);
        }
      }
      const now = new Date();
      if (!current) {
        const body = stamp(resource, resource.id, 1, now);
        const pk = await this.insertCurrent(t, store, type, resource.id, 1, now, body);
        if (pk === undefined) {
          // Another transaction created it between our lock attempt and insert: treat ours as the update.
          return this.update(store, resource, options, t);
        }
        const stored = await this.record(t, 'create', { pk, store, type, id: resource.id, versionId: 1, lastUpdated: now, deleted: false, resource: body });
        return { stored, created: true };
      }
      const versionId = current.versionId + 1;
      const body = stamp(resource, resource.id, versionId, now);
      await t.execute(
        `WITH superseded AS (${SUPERSEDE})
         UPDATE resource SET version_id = $2, last_updated = $3::timestamptz, deleted = false, content = $4::jsonb WHERE pk = $1`,
        current.pk,
        versionId,
        now.toISOString(),
        stringifyStoredJson(body),
      );
      const stored = await this.record(t, current.deleted ? 'create' : 'update', {
        pk: current.pk,
        store,
        type,
        id: resource.id,
        versionId,
        lastUpdated: now,
        deleted: false,
        resource: body,
      });
      return { stored, created: current.deleted };
    });
  }

  /** Deletes the current version; deleting what is absent or already deleted changes nothing. */
  async delete(store: string, type: string, id: string, tx?: Tx): Promise<StoredVersion | undefined> {
    return this.inTx(tx, async (t) => {
      const current = await this.lockCurrent(t, store, type, id);
      if (!current || current.deleted) return undefined;
      const versionId = current.versionId + 1;
      const now = new Date();
      await t.execute(
        `WITH superseded AS (${SUPERSEDE})
         UPDATE resource SET version_id = $2, last_updated = $3::timestamptz, deleted = true, content = NULL WHERE pk = $1`,
        current.pk,
        versionId,
        now.toISOString(),
      );
      return this.record(t, 'delete', { pk: current.pk, store, type, id, versionId, lastUpdated: now, deleted: true, resource: null });
    });
  }

  /**
   * Versions newest first, for one resource, one type or a whole store: the current versions (in `resource`)
   * and the superseded ones (in `resource_history`), each side cut to one page before they are merged.
   * Keyset paging on (last_updated, resource_pk, version_id) keeps pages stable while new versions are written.
   */
  async history(scope: { store: string; type?: string; id?: string }, options: HistoryOptions, sql: Sql = this.sql): Promise<HistoryPage> {
    const params: unknown[] = [];
    const add = (value: unknown) => {
      params.push(value);
      return `$${params.length}`;
    };
    const store = add(scope.store);
    const type = scope.type ? add(scope.type) : undefined;
    const id = scope.id ? add(scope.id) : undefined;
    const since = options.since ? add(options.since.toISOString()) : undefined;
    const before = options.before ? add(options.before.toISOString()) : undefined;
    const c = options.cursor ? decodeCursor(options.cursor) : undefined;
    const cursor = c ? [add(c.t), add(c.pk), add(c.v)] : undefined;
    const access = options.accessFilter ? appendAccessFilter(options.accessFilter, params) : undefined;
    const limit = add(options.count + 1);
    /** The conditions on one side's (last_updated, pk, version) columns. */
    const versions = (lastUpdated: string, pk: string, version: string): string[] => [
      ...(since ? [`${lastUpdated} >= ${since}::timestamptz`] : []),
      ...(before ? [`${lastUpdated} <= ${before}::timestamptz`] : []),
      ...(cursor ? [`(${lastUpdated}, ${pk}, ${version}) < (${cursor[0]}::timestamptz, ${cursor[1]}::bigint, ${cursor[2]}::int)`] : []),
    ];
    const scoped = (alias: string) => [`${alias}.store = ${store}`, ...(type ? [`${alias}.type = ${type}`] : []), ...(id ? [`${alias}.id = ${id}`] : [])];
    const currentSide =
      `SELECT r.pk, r.store, r.type, r.id, r.version_id, r.last_updated, r.deleted, r.content FROM resource r ` +
      `WHERE ${[...scoped('r'), ...versions('r.last_updated', 'r.pk', 'r.version_id'), ...(access ? [access] : [])].join(' AND ')} ` +
      `ORDER BY r.last_updated DESC, r.pk DESC, r.version_id DESC LIMIT ${limit}`;
    // One resource's superseded versions by its pk; a type's or a store's through their own index. The
    // access filter holds on the current row: the superseded versions of the rows it lets through, as a
    // semi-join (on Citus, where history is sharded, the coordinator's visible rows first, then their
    // versions on the shards; a join would put its correlated subqueries beside a sharded table).
    const historyScope = access
      ? [...(id ? [] : scoped('h')), `h.resource_pk IN (SELECT r.pk FROM resource r WHERE ${[...scoped('r'), access].join(' AND ')})`]
      : id
        ? [`h.resource_pk = (SELECT pk FROM resource WHERE store = ${store} AND type = ${type} AND id = ${id})`]
        : scoped('h');
    const historySide =
      `SELECT h.resource_pk, h.store, h.type, h.id, h.version_id, h.last_updated, h.deleted, h.content FROM resource_history h ` +
      `WHERE ${[...historyScope, ...versions('h.last_updated', 'h.resource_pk', 'h.version_id')].join(' AND ')} ` +
      `ORDER BY h.last_updated DESC, h.resource_pk DESC, h.version_id DESC LIMIT ${limit}`;
    const rows = await sql.query<Row[]>(
      `SELECT * FROM ((${currentSide}) UNION ALL (${historySide})) v ORDER BY last_updated DESC, pk DESC, version_id DESC LIMIT ${limit}`,
      ...params,
    );
    const entries = rows.slice(0, options.count).map(toStored);
    const last = entries[entries.length - 1];
    const next = rows.length > options.count && last ? encodeCursor(last) : undefined;
    return { entries, next };
  }

  private async lockCurrent(t: Tx, store: string, type: string, id: string): Promise<StoredVersion | undefined> {
    const rows = await t.query<Row[]>(CURRENT_FOR_UPDATE, store, type, id);
    return rows.length ? toStored(rows[0]) : undefined;
  }

  /** Inserts a current row; undefined when (store, type, id) already exists (a concurrent create won). */
  private async insertCurrent(t: Tx, store: string, type: string, id: string, versionId: number, now: Date, body: Resource): Promise<bigint | undefined> {
    const rows = await t.query<{ pk: bigint }[]>(
      `INSERT INTO resource (store, type, id, version_id, last_updated, deleted, content)
       VALUES ($1, $2, $3, $4, $5::timestamptz, false, $6::jsonb)
       ON CONFLICT (store, type, id) DO NOTHING RETURNING pk`,
      store,
      type,
      id,
      versionId,
      now.toISOString(),
      stringifyStoredJson(body),
    );
    return rows.length ? BigInt(rows[0].pk) : undefined;
  }

  /** Runs the write hooks for a version just written to `resource`. */
  private async record(t: Tx, kind: ChangeKind, version: StoredVersion): Promise<StoredVersion> {
    for (const hook of this.hooks) await hook(t, { ...version, kind });
    return version;
  }
}

/**
 * A unique violation on `resource` (an id that already exists) as the 409 it is; undefined for any other error.
 * PostgreSQL names the key in the error's detail: `Key (store, type, id)=(s, Patient, 123) already exists.`
 */
function uniqueViolation(err: unknown): Error | undefined {
  const e = err as { code?: string; detail?: string };
  if (e?.code !== '23505') return undefined;
  const key = /^Key \(store, type, id\)=\([^,]*, ([^,]*), (.*)\) already exists\.$/.exec(e.detail ?? '');
  return conflict(key ? `${key[1]}/${key[2]} already exists` : 'A resource with one of these ids already exists');
}

function encodeCursor(v: StoredVersion): string {
  return Buffer.from(JSON.stringify({ t: v.lastUpdated.toISOString(), pk: String(v.pk), v: v.versionId })).toString('base64url');
}

function decodeCursor(cursor: string): { t: string; pk: string; v: number } {
  try {
    const c = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (typeof c.t === 'string' && typeof c.pk === 'string' && typeof c.v === 'number') return c;
  } catch {
    // fall through
  }
  throw badRequest('The paging cursor is not one this server issued', '_cursor');
}
