import type { AuthorisedCaller } from '../access/caller';
import { allOf, requireReadOrSearch, requireScope, requireSomeRead, requireSomeSearch, typeRestriction } from '../access/scopeGuard';
import { type Permission, permittedTypes } from '../access/scopes';
import { AGGREGATED_STORE } from '../aggregator/outbox';
import type { AggregationReport } from '../aggregator/report';
import { applyPatch, parsePatch } from '../fhir/jsonPatch';
import { badRequest, methodNotAllowed, notFound, tooManyMatches } from '../fhir/outcome';
import type { Bundle, FhirVersion, Resource } from '../fhir/types';
import type { HistoryOptions, HistoryPage, ResourceRepository, StoredVersion, Tx } from '../store/resourceRepository';
import type { AccessFilter, AggregationReports, Admission, ResourceValidator, ScanPage, ScanText, SearchPort } from './ports';
import { replacedBy, survivingPatients } from './survivingPatients';
import { writeGuard } from './writeGuard';

export interface FhirServiceDeps {
  repo: ResourceRepository;
  validator: ResourceValidator;
  search: SearchPort;
  /** Backpressure for writes that feed the aggregation (customer endpoints). */
  admission?: Admission;
  /** The aggregation report of a customer endpoint (`$aggregation-report`). */
  reports?: AggregationReports;
  /** Called once a write of `caller` is committed, before it is answered (read-your-writes on a replica: replicaReads.ts). */
  committed?(caller: AuthorisedCaller): Promise<void>;
}

export interface StoreBinding {
  /** Resource partition: an endpoint id, or `aggregated`. */
  store: string;
  fhirVersion: FhirVersion;
  /**
   * Who is calling, already authenticated and allowed on this store (service/authorization.ts): every
   * interaction checks the caller's SMART scopes for its type before it touches the store.
   */
  caller: AuthorisedCaller;
  /** What the caller may see (aggregated endpoint): hidden resources read as missing. */
  accessFilter?: AccessFilter;
}

export type WriteOutcome = { stored: StoredVersion; created: boolean };

/** Savepoint names, unique within the process. */
let savepoints = 0;

/**
 * The FHIR interactions over one store, with no HTTP in sight: both doors (REST and GraphQL) and the
 * transaction processor call these. Each write is validated against the store's FHIR version and runs in
 * one database transaction (the caller's, when it passes one).
 * Interaction semantics: http://hl7.org/fhir/R4/http.html
 * Scopes (SMART v2 letters): read, vread and instance history need `r`; type search and type history `s`;
 * create `c`; update and patch `u`; delete `d`; the conditional forms add `s` for their search (and a
 * conditional update that creates needs `c`). System-level search and history need `s` on some type and
 * return only the types the caller may read or search.
 */
export class FhirService {
  /** What searches, includes and history may return: the caller's types, and `binding.accessFilter`. */
  private readonly rows: AccessFilter | undefined;

  constructor(
    private readonly deps: FhirServiceDeps,
    readonly binding: StoreBinding,
    /** When set, every interaction runs inside this transaction (entries of a transaction Bundle). */
    private readonly tx?: Tx,
  ) {
    this.rows = allOf(typeRestriction(binding.caller), binding.accessFilter);
  }

  /** The same service with every interaction inside `tx`. */
  inTransaction(tx: Tx): FhirService {
    return new FhirService(this.deps, this.binding, tx);
  }

  /**
   * Runs `fn` in one database transaction with a service bound to it. `items`: how many resources it may
   * write, for the aggregation's backpressure (see admission.ts).
   */
  transaction<T>(fn: (service: FhirService, tx: Tx) => Promise<T>, items = 1, options: { isolated?: boolean } = {}): Promise<T> {
    if (this.tx && options.isolated) return this.savepoint(this.tx, () => fn(this, this.tx as Tx));
    return this.admitted(items, () => this.inTx(this.tx, (tx) => fn(this.inTransaction(tx), tx)));
  }

  /**
   * `fn` inside the enclosing transaction, undone on its own when it throws (a batch entry that fails inside
   * an idempotent request, which runs the whole batch in one transaction: see idempotentWrites.ts).
   */
  private async savepoint<T>(tx: Tx, fn: () => Promise<T>): Promise<T> {
    const name = `entry_${++savepoints}`;
    await tx.execute(`SAVEPOINT ${name}`);
    try {
      const result = await fn();
      await tx.execute(`RELEASE SAVEPOINT ${name}`);
      return result;
    } catch (err) {
      await tx.execute(`ROLLBACK TO SAVEPOINT ${name}`);
      throw err;
    }
  }

  /** A write that starts its own transaction waits for admission; one inside a transaction was admitted with it (and is reported committed with it). */
  private async admitted<T>(items: number, fn: () => Promise<T>): Promise<T> {
    if (this.tx) return fn();
    const release = await this.deps.admission?.admit(items);
    let result: T;
    try {
      result = await fn();
    } finally {
      release?.();
    }
    // Every write outside a caller's transaction passes here once committed (a transaction's writes, with it).
    await this.deps.committed?.(this.binding.caller);
    return result;
  }

  private get store(): string {
    return this.binding.store;
  }

  /** Unknown types are a 404: the URL names something this endpoint does not have. */
  requireType(type: string): void {
    if (!this.deps.validator.isResourceType(this.binding.fhirVersion, type)) {
      throw notFound(`Resource type '${type}' is not known to this FHIR ${this.binding.fhirVersion} endpoint`);
    }
  }

  /** Throws a 403 (insufficient_scope) unless the caller holds every one of `permissions` on `type`. */
  requireScope(type: string, ...permissions: Permission[]): void {
    requireScope(this.binding.caller, type, ...permissions);
  }

  /** Work across every type (a bulk export of all types): 403 unless the caller may search at least one. */
  requireSomeSearch(): void {
    requireSomeSearch(this.binding.caller);
  }

  /**
   * A bulk export's status and files are fetched with later tokens of the client that started it, which may
   * carry fewer scopes: the status needs read or search on some type, a file read or search on its type.
   */
  requireExportAccess(type?: string): void {
    if (type === undefined) requireSomeRead(this.binding.caller);
    else requireReadOrSearch(this.binding.caller, type);
  }

  /** A known type the caller holds `permissions` on: 404 for unknown types, then 403 for missing scopes. */
  private allowed(type: string, ...permissions: Permission[]): void {
    this.requireType(type);
    this.requireScope(type, ...permissions);
  }

  /** Every write's resource: valid for the store's FHIR version, and nothing a client may not set (writeGuard.ts). */
  private validate(body: unknown, type: string): Resource {
    this.deps.validator.assertValid(this.binding.fhirVersion, body, type);
    writeGuard(body as Resource, this.store);
    return body as Resource;
  }

  /**
   * What the aggregator made of this endpoint's resources (issue 15 item 7), for its owner: the service was
   * handed out for an endpoint the caller owns. Like a system-level search it needs the search scope on some
   * type, and it counts, names and follows only the types the caller may read or search.
   */
  async aggregationReport(): Promise<AggregationReport> {
    if (!this.deps.reports || this.store === AGGREGATED_STORE) throw methodNotAllowed('$aggregation-report is available on customer endpoints only');
    requireSomeSearch(this.binding.caller);
    const caller = this.binding.caller;
    return this.deps.reports.report(this.store, permittedTypes(caller.scopes, ['r', 's'], { patient: caller.patientId !== undefined }));
  }

  async read(type: string, id: string): Promise<StoredVersion> {
    this.allowed(type, 'r');
    if (this.binding.accessFilter) await this.requireVisible(type, id);
    return this.deps.repo.read(this.store, type, id, this.tx);
  }

  /** A resource the caller may not see is reported exactly like one that does not exist. */
  private async requireVisible(type: string, id: string): Promise<void> {
    const found = await this.deps.repo.find(this.store, type, id, this.tx);
    if (!found || !(await this.deps.repo.visible(found.pk, this.binding.accessFilter as AccessFilter, this.tx))) throw notFound(`${type}/${id} is not known`);
  }

  async vread(type: string, id: string, versionId: string): Promise<StoredVersion> {
    this.allowed(type, 'r');
    const v = Number(versionId);
    if (!Number.isInteger(v) || v < 1) throw notFound(`${type}/${id} has no version '${versionId}'`);
    if (this.binding.accessFilter) await this.requireVisible(type, id);
    return this.deps.repo.vread(this.store, type, id, v, this.tx);
  }

  /**
   * create, or conditional create when `ifNoneExist` is given: one match returns it unchanged, several are a
   * 412. The search and the insert run under an advisory lock on the criteria so two racing conditional
   * creates cannot both insert.
   */
  async create(type: string, body: unknown, options: { ifNoneExist?: string } = {}): Promise<WriteOutcome> {
    this.allowed(type, ...(options.ifNoneExist ? (['c', 's'] as const) : (['c'] as const)));
    const resource = this.validate(body, type);
    const { id: _ignored, ...withoutId } = resource;
    const fresh = withoutId as Resource;
    if (!options.ifNoneExist) {
      return this.admitted(1, async () => ({ stored: await this.deps.repo.create(this.store, fresh, this.tx), created: true }));
    }
    const params = parseQuery(options.ifNoneExist, 'If-None-Exist');
    return this.transaction(async (_svc, t) => {
      await this.lockCriteria(t, type, new URLSearchParams(params).toString());
      const matches = await this.deps.search.findMatches({ ...this.binding, resourceType: type, params }, 2, t);
      if (matches.length > 1) throw tooManyMatches(`If-None-Exist '${options.ifNoneExist}' matches more than one ${type}`);
      if (matches.length === 1) return { stored: await this.deps.repo.read(this.store, type, matches[0].id, t), created: false };
      return { stored: await this.deps.repo.create(this.store, fresh, t), created: true };
    });
  }

  /**
   * Creates resources with ids the caller assigned (fresh UUIDs of a transaction's POST entries) in one
   * batched write. Each is validated first; `onInvalid` learns which one failed.
   */
  async createMany(resources: { type: string; id: string; body: unknown }[], onInvalid?: (index: number) => void): Promise<StoredVersion[]> {
    const valid = resources.map((r, i) => {
      try {
        this.allowed(r.type, 'c');
        return { ...this.validate(r.body, r.type), id: r.id };
      } catch (err) {
        onInvalid?.(i);
        throw err;
      }
    });
    return this.admitted(valid.length, () => this.deps.repo.createMany(this.store, valid, this.tx));
  }

  /**
   * The current resources matching `type?query`, at most `limit`, under the same lock a conditional create
   * takes, so two transactions resolving the same criteria cannot both decide to create.
   */
  async resolveMatches(type: string, query: [string, string][], limit = 2): Promise<{ type: string; id: string; versionId: number }[]> {
    this.allowed(type, 's');
    return this.inTx(this.tx, async (t) => {
      await this.lockCriteria(t, type, new URLSearchParams(query).toString());
      return this.deps.search.findMatches({ ...this.binding, resourceType: type, params: query }, limit, t);
    });
  }

  /** update, or create-on-PUT with the client's id. */
  async update(type: string, id: string, body: unknown, options: { ifMatch?: number } = {}): Promise<WriteOutcome> {
    this.allowed(type, 'u');
    const resource = this.validate(body, type);
    if (resource.id === undefined) throw badRequest(`The ${type} in the body has no id; PUT needs one equal to the URL's '${id}'`, `${type}.id`);
    if (resource.id !== id) throw badRequest(`The id in the body ('${resource.id}') differs from the id in the URL ('${id}')`, `${type}.id`);
    return this.admitted(1, () => this.deps.repo.update(this.store, { ...resource, id }, options, this.tx));
  }

  /** Conditional update (PUT type?criteria): none → create, one → update it, several → 412. */
  async conditionalUpdate(type: string, query: [string, string][], body: unknown, options: { ifMatch?: number } = {}): Promise<WriteOutcome> {
    this.allowed(type, 'u', 's');
    const resource = this.validate(body, type);
    if (query.length === 0) throw badRequest('A conditional update needs search criteria');
    return this.transaction(async (_svc, t) => {
      await this.lockCriteria(t, type, JSON.stringify(query));
      const matches = await this.deps.search.findMatches({ ...this.binding, resourceType: type, params: query }, 2, t);
      if (matches.length > 1) throw tooManyMatches(`The criteria match more than one ${type}; conditional update needs exactly one`);
      if (matches.length === 1) {
        const id = matches[0].id;
        if (resource.id !== undefined && resource.id !== id) {
          throw badRequest(`The id in the body ('${resource.id}') differs from the matching ${type}/${id}`, `${type}.id`);
        }
        return this.deps.repo.update(this.store, { ...resource, id }, options, t);
      }
      // No match: the update creates, which needs the create scope too.
      this.requireScope(type, 'c');
      if (resource.id !== undefined) return this.deps.repo.update(this.store, { ...resource, id: resource.id }, options, t);
      return { stored: await this.deps.repo.create(this.store, resource, t), created: true };
    });
  }

  /** JSON Patch; the patched resource is validated like any update and may not change its type or id. */
  async patch(type: string, id: string, body: unknown, options: { ifMatch?: number } = {}): Promise<WriteOutcome> {
    this.allowed(type, 'u');
    const operations = parsePatch(body);
    return this.transaction(async (_svc, t) => {
      // Locked: concurrent patches of one resource apply one after the other instead of failing on a stale version.
      const current = await this.deps.repo.read(this.store, type, id, t, { forUpdate: true });
      const patched = applyPatch(current.resource as Resource, operations);
      if (typeof patched !== 'object' || patched === null || Array.isArray(patched)) {
        throw badRequest('The patch does not leave a resource');
      }
      if (patched.resourceType !== type) throw badRequest('A patch may not change resourceType', `${type}.resourceType`);
      if (patched.id !== id) throw badRequest('A patch may not change the id', `${type}.id`);
      const resource = this.validate(patched, type);
      return this.deps.repo.update(this.store, { ...resource, id }, { ifMatch: options.ifMatch ?? current.versionId }, t);
    });
  }

  async delete(type: string, id: string): Promise<StoredVersion | undefined> {
    this.allowed(type, 'd');
    return this.admitted(1, () => this.deps.repo.delete(this.store, type, id, this.tx));
  }

  /** Conditional delete, single-match flavour: several matches are a 412. */
  async conditionalDelete(type: string, query: [string, string][]): Promise<StoredVersion | undefined> {
    this.allowed(type, 'd', 's');
    if (query.length === 0) throw badRequest('A conditional delete needs search criteria');
    return this.transaction(async (_svc, t) => {
      const matches = await this.deps.search.findMatches({ ...this.binding, resourceType: type, params: query }, 2, t);
      if (matches.length > 1) throw tooManyMatches(`The criteria match more than one ${type}; conditional delete deletes one at most`);
      if (matches.length === 0) return undefined;
      return this.deps.repo.delete(this.store, type, matches[0].id, t);
    });
  }

  async history(scope: { type?: string; id?: string }, options: HistoryOptions): Promise<HistoryPage> {
    if (scope.type) this.allowed(scope.type, scope.id ? 'r' : 's');
    else requireSomeSearch(this.binding.caller);
    if (scope.type && scope.id && this.binding.accessFilter) await this.requireVisible(scope.type, scope.id);
    const page = await this.deps.repo.history({ store: this.store, ...scope }, { ...options, accessFilter: this.rows }, this.tx);
    if (scope.type && scope.id && page.entries.length === 0 && !options.cursor) {
      const exists = await this.deps.repo.find(this.store, scope.type, scope.id, this.tx);
      if (!exists) throw notFound(`${scope.type}/${scope.id} is not known`);
    }
    return page;
  }

  /**
   * search-type, or search-system when `type` is undefined (every type listed in `_type` must be searchable;
   * without `_type` the results are limited to the types the caller may read or search).
   */
  async search(type: string | undefined, params: [string, string][], options: { baseUrl: string; handling?: 'strict' | 'lenient' }): Promise<Bundle> {
    if (type) this.allowed(type, 's');
    else {
      requireSomeSearch(this.binding.caller);
      for (const listed of params
        .filter(([n]) => n === '_type')
        .flatMap(([, v]) => v.split(','))
        .filter((t) => t !== ''))
        this.allowed(listed, 's');
    }
    return this.deps.search.search({ ...this.binding, resourceType: type, params, ...options, accessFilter: this.rows }, this.tx);
  }

  /**
   * One page of `Patient/$everything` (patient-operation-everything.html): the resources of the patient's
   * compartment the caller may see, `_type` and `_since` applied. Needs `r` on Patient and the patient
   * visible; each type listed in `_type` needs `s` (without `_type`, the rows are limited to the types the
   * caller may read or search, as in system search). An id absorbed by a merge answers for the surviving
   * Patient (`patient`: whose compartment the page is), when the caller may see it; else it is a 404.
   */
  async everything(
    id: string,
    options: { types: string[]; listed: boolean; since?: Date; after?: string; count: number; baseUrl: string },
  ): Promise<ScanPage & { patient: string }> {
    this.allowed('Patient', 'r');
    const found = await this.deps.repo.find(this.store, 'Patient', id, this.tx);
    const accessFilter = this.binding.accessFilter;
    if (!found || (accessFilter && !(await this.deps.repo.visible(found.pk, accessFilter, this.tx)))) throw notFound(`Patient/${id} is not known`);
    let patient = id;
    // Only an absorbed id (rare) pays for following its links; a survivor the caller may not see: as unknown.
    if (found.resource && replacedBy(found.resource) !== undefined) {
      const survivor = (await this.survivingPatients([id], options.baseUrl)).get(id);
      if (survivor === undefined) throw notFound(`Patient/${id} is not known`);
      patient = survivor;
    }
    if (options.listed) for (const t of options.types) this.allowed(t, 's');
    const page = await this.deps.search.scan(
      { store: this.store, types: options.types, since: options.since, patients: [patient], after: options.after, limit: options.count, accessFilter: this.rows },
      this.tx,
    );
    return { ...page, patient };
  }

  /**
   * The Patient each of `ids` stands for now (survivingPatients.ts): itself, or the survivor of the merges that
   * absorbed it, each Patient read as this caller reads it (`r` on Patient; hidden reads as missing). Ids that
   * lead to no Patient the caller may see are absent.
   */
  survivingPatients(ids: string[], baseUrl: string): Promise<Map<string, string>> {
    return survivingPatients(ids, (chunk) => this.readMany('Patient', chunk, baseUrl));
  }

  /**
   * A bulk export's rows of one or more types (bulk-data export.html), as NDJSON pages of `pageSize` handed
   * to `onPage` until it answers false; each line is what a read of the resource answers. Each type listed in
   * `_type` needs `s`; without `_type` the rows are limited to the types the caller may read or search.
   * `patients`: those compartments only, or `all` for every patient compartment (Patient-level export);
   * `group`: with `patients`, that Group too (Group-level export). The rows are read in one transaction of
   * their own (a cursor), so they are one snapshot of the store.
   */
  async exportText(
    options: { types: string[]; listed: boolean; filters?: Record<string, [string, string][][]>; since?: Date; patients?: string[] | 'all'; group?: string; pageSize: number },
    onPage: (page: ScanText) => Promise<boolean>,
  ): Promise<void> {
    for (const t of options.types) if (options.listed) this.allowed(t, 's');
    const { listed: _listed, pageSize, ...scan } = options;
    await this.inTx(this.tx, (t) => this.deps.search.scanText({ store: this.store, ...scan, limit: pageSize, accessFilter: this.rows }, onPage, t));
  }

  /**
   * Reads of several resources of one type by id (GraphQL reference resolution), as one `_id` search:
   * a read, so it needs `r`. Resources that are missing, deleted or hidden are simply absent.
   */
  async readMany(type: string, ids: string[], baseUrl: string): Promise<Resource[]> {
    this.allowed(type, 'r');
    if (ids.length === 0) return [];
    const bundle = await this.deps.search.search(
      {
        ...this.binding,
        resourceType: type,
        params: [
          ['_id', ids.join(',')],
          ['_count', String(ids.length)],
        ],
        baseUrl,
        handling: 'strict',
        accessFilter: this.rows,
      },
      this.tx,
    );
    return (bundle.entry ?? []).filter((e) => (e.search?.mode ?? 'match') === 'match' && e.resource).map((e) => e.resource as Resource);
  }

  private inTx<T>(tx: Tx | undefined, fn: (tx: Tx) => Promise<T>): Promise<T> {
    return tx ? fn(tx) : this.deps.repo.transaction(fn);
  }

  private async lockCriteria(t: Tx, type: string, criteria: string): Promise<void> {
    await t.query(`SELECT 1 AS locked FROM pg_advisory_xact_lock(hashtext($1))`, `${this.store}|${type}|${criteria}`);
  }
}

/** `identifier=a|b&name=x` (an If-None-Exist value or a URL query) as ordered pairs. */
export function parseQuery(query: string, where: string): [string, string][] {
  const q = query.startsWith('?') ? query.slice(1) : query.includes('?') ? query.slice(query.indexOf('?') + 1) : query;
  const pairs = [...new URLSearchParams(q).entries()];
  if (pairs.length === 0) throw badRequest(`${where} has no search criteria`, where);
  return pairs;
}
