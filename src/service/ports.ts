import type { AggregationReport, ReportTypes } from '../aggregator/report';
import type { Bundle, FhirVersion, Resource } from '../fhir/types';
import type { Tx } from '../store/resourceRepository';

/**
 * What the service layer needs from validation and search, as narrow interfaces: the doors and the service
 * depend on these, the wiring in app.ts supplies the implementations.
 */
export interface ResourceValidator {
  /** Throws a 400 OperationOutcomeError naming each problem and its location. */
  assertValid(version: FhirVersion, resource: unknown, expectedType?: string): asserts resource is Resource;
  isResourceType(version: FhirVersion, type: string): boolean;
}

/**
 * What a caller may see, as a SQL condition on one `resource` row. It is rendered once per row alias a
 * query touches (the searched rows, every chain hop, every `_has` level, included rows, history), so a
 * feature cannot forget it: `bind` adds a value to the statement's parameters and returns its placeholder.
 */
export interface AccessFilter {
  condition(alias: string, bind: (value: unknown) => string): string;
  /**
   * Whether the condition reads consent rows: a revoked grant must count on the next request, so such a
   * caller's reads go to a replica only once it has replayed the latest consent change (replicaReads.ts).
   */
  readsConsent?: boolean;
}

export interface SearchQuery {
  store: string;
  fhirVersion: FhirVersion;
  resourceType?: string;
  params: [string, string][];
  baseUrl: string;
  handling?: 'strict' | 'lenient';
  accessFilter?: AccessFilter;
}

export interface MatchRef {
  type: string;
  id: string;
  versionId: number;
}

/**
 * Backpressure on writes that feed a slower pipeline (the aggregation): `admit` waits until `items` more
 * work items may be enqueued and resolves to a release, called once they are (or are not, on rollback).
 */
export interface Admission {
  admit(items: number): Promise<() => void>;
}

/**
 * A walk over a store's current resources in primary-key order (`Patient/$everything`, `$export`): of
 * `types`, each optionally narrowed by search filters (any one of its lists matching), changed after
 * `since`, in the compartments of `patients` (aggregated Patient ids, or `all` patients'), after the row `after`.
 * `group`: the id of a Group walked beside those compartments (a Group-level export exports its Group too).
 */
export interface ScanQuery {
  store: string;
  types: string[];
  filters?: Record<string, [string, string][][]>;
  since?: Date;
  patients?: string[] | 'all';
  group?: string;
  after?: string;
  limit: number;
  accessFilter?: AccessFilter;
}

export interface ScanPage {
  resources: Resource[];
  /** The position to pass as `after` for the next page; absent on the last. */
  next?: string;
}

/** A page of a scan as NDJSON: one resource per line, each as a read serves it, every line ending in `\n`. */
export interface ScanText {
  ndjson: string;
  count: number;
}

export interface SearchPort {
  /** One page of a scan (see ScanQuery), access-filtered like every search. */
  scan(query: ScanQuery, tx?: Tx): Promise<ScanPage>;
  /**
   * Every row of a scan as NDJSON pages of `limit` rows, for bulk export (no resource is parsed on the way),
   * through a cursor in `tx`; stops when `onPage` answers false.
   */
  scanText(query: ScanQuery, onPage: (page: ScanText) => Promise<boolean>, tx: Tx): Promise<void>;
  /** Runs inside `tx` when given (searches in a transaction Bundle see its writes). */
  search(query: SearchQuery, tx?: Tx): Promise<Bundle>;
  /** Current, undeleted resources matching `params` (conditional interactions) that the filter lets through; at most `limit`. */
  findMatches(
    query: { store: string; fhirVersion: FhirVersion; resourceType: string; params: [string, string][]; accessFilter?: AccessFilter },
    limit: number,
    tx?: Tx,
  ): Promise<MatchRef[]>;
}

/** The aggregation report of a customer endpoint (aggregator/report.ts), limited to the types given. */
export interface AggregationReports {
  report(store: string, types: ReportTypes): Promise<AggregationReport>;
}
