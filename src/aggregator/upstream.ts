import { readR4Definition } from '../fhir/definitions';
import { OperationOutcomeError } from '../fhir/outcome';
import { compileExpression, type Extractor } from '../fhir/pathExpression';
import { searchParameter } from '../fhir/searchParameters';
import type { FhirVersion, Resource } from '../fhir/types';
import { assertValidResource } from '../fhir/validation';
import type { Tx } from '../store/resourceRepository';
import { aggregatedType } from './aggregatedType';
import { AGGREGATED_STORE } from './outbox';
import { checkInclusion, type Exclusion, parseRelative, POPULATION_TYPES, type ReferenceSite, referenceSites } from './rules';
import { stu3ToR4 } from './stu3ToR4';

/**
 * The upstream side of aggregation: loading customer resources with their endpoint's settings, and turning
 * one into the R4 form the rules apply to (DESIGN §3.2–3.3). No aggregated state is read here.
 */
export interface UpstreamRef {
  store: string;
  type: string;
  id: string;
}

export interface Upstream extends UpstreamRef {
  /** The row's primary key: an R4 upstream's search-index rows are shared with its copy (see Copies). */
  pk: bigint;
  /** Null when the resource is deleted or was never there. */
  content: Resource | null;
  lastUpdated: Date;
  fhirVersion: FhirVersion;
  defaultSourceOrg: string | null;
  customerId: string;
  /**
   * What the aggregation made of it so far, when read with it (`loadUpstream`'s `withPrevious`): its member row
   * and current aggregated copy; `null` when it has no member row yet. Read in the same statement as the
   * upstream row, so a batch of copies needs no read of its own for it (see Copies).
   */
  previous?: Previous | null;
}

/** An upstream resource's member row as the aggregation left it, with its aggregated copy's current content. */
export interface Previous {
  aggId: string | null;
  included: boolean;
  /** The current aggregated copy (unmerged types), unless deleted or never written. */
  content: Resource | null;
}

export const keyOf = (r: UpstreamRef): string => `${r.store}|${r.type}|${r.id}`;

/**
 * The upstream rows of a batch, with their endpoints' settings: those are read once per statement (a batch has
 * few endpoints and many rows) rather than probed per row.
 */
const UPSTREAM = `WITH e AS MATERIALIZED (SELECT id, fhir_version, default_source_org, customer_id FROM endpoint WHERE id = ANY($4::text[]))
  SELECT r.pk::text AS pk, r.store, r.type, r.id, r.content, r.last_updated, e.fhir_version, e.default_source_org, e.customer_id
    FROM unnest($1::text[], $2::text[], $3::text[]) AS t(store, type, id)
    JOIN resource r ON r.store = t.store AND r.type = t.type AND r.id = t.id AND r.content IS NOT NULL
    JOIN e ON e.id = r.store`;

/**
 * The same, with each row's member row and aggregated copy, each probed by its key (`$5`: the aggregated type).
 * The lateral subquery (OFFSET 0 keeps it one) and the scalar one make them probes per row: joined plainly, the
 * statement read 24 pages per row in a 60-patient ingest (bench/ingestCost.ts), where the two reads it replaces
 * had read 10 together; as probes it reads 7, the endpoints' settings being read once.
 */
const UPSTREAM_WITH_PREVIOUS = `WITH e AS MATERIALIZED (SELECT id, fhir_version, default_source_org, customer_id FROM endpoint WHERE id = ANY($4::text[]))
  SELECT r.pk::text AS pk, r.store, r.type, r.id, r.content, r.last_updated, e.fhir_version, e.default_source_org, e.customer_id,
         p.status AS prev_status, p.agg_id AS prev_agg_id, p.content AS prev_content
    FROM unnest($1::text[], $2::text[], $3::text[], $5::text[]) AS t(store, type, id, agg_type)
    JOIN resource r ON r.store = t.store AND r.type = t.type AND r.id = t.id AND r.content IS NOT NULL
    JOIN e ON e.id = r.store
    LEFT JOIN LATERAL (
      SELECT m.status, m.agg_id, (SELECT a.content FROM resource a WHERE a.store = '${AGGREGATED_STORE}' AND a.type = t.agg_type AND a.id = m.agg_id) AS content
        FROM agg_member m WHERE m.store = t.store AND m.type = t.type AND m.res_id = t.id OFFSET 0) p ON true`;

/**
 * The current upstream versions of `refs`, keyed by `keyOf`; missing and deleted ones are absent. With
 * `withPrevious`, each also carries its member row and aggregated copy (`Upstream.previous`): the member
 * row is probed by its key either way, and one statement does for both.
 */
export async function loadUpstream(tx: Tx, refs: UpstreamRef[], withPrevious = false): Promise<Map<string, Upstream>> {
  if (!refs.length) return new Map();
  const rows = await tx.query<
    {
      pk: string;
      store: string;
      type: string;
      id: string;
      content: Resource;
      last_updated: Date;
      fhir_version: FhirVersion;
      default_source_org: string | null;
      customer_id: string;
      prev_status?: string | null;
      prev_agg_id?: string | null;
      prev_content?: Resource | null;
    }[]
  >(
    withPrevious ? UPSTREAM_WITH_PREVIOUS : UPSTREAM,
    refs.map((r) => r.store),
    refs.map((r) => r.type),
    refs.map((r) => r.id),
    [...new Set(refs.map((r) => r.store))],
    ...(withPrevious ? [refs.map((r) => aggregatedType(r.type))] : []),
  );
  return new Map(
    rows.map((r) => [
      keyOf(r),
      {
        pk: BigInt(r.pk),
        store: r.store,
        type: r.type,
        id: r.id,
        content: r.content,
        lastUpdated: new Date(r.last_updated),
        fhirVersion: r.fhir_version,
        defaultSourceOrg: r.default_source_org,
        customerId: r.customer_id,
        ...(withPrevious ? { previous: r.prev_status ? { aggId: r.prev_agg_id ?? null, included: r.prev_status === 'included', content: r.prev_content ?? null } : null } : {}),
      },
    ]),
  );
}

/** An upstream resource in R4 form that passed the inclusion rules, with its references still upstream ones. */
export interface Prepared {
  resource: Resource;
  sites: ReferenceSite[];
  /** Distinct `Type/id` reference targets, on the same endpoint. */
  targets: string[];
}

/**
 * STU3 → R4 when needed, server-owned meta and the id dropped (client labels, tags and profiles kept), the
 * inclusion rules applied (absolute references normalised on the way), and a mapped STU3 resource validated
 * as R4 so that a mapping gap excludes it with the validator's reason instead of serving it malformed (an R4
 * upstream was validated when it was written, and the rules only shorten references).
 *
 * Works on `upstream.content` in place: it was read from the database for this pass and nothing else holds it.
 */
export function prepare(upstream: Upstream, supported: ReadonlySet<string>): Prepared | Exclusion {
  if (!supported.has(aggregatedType(upstream.type))) return { rule: 'unsupported-type', reason: `${upstream.type} is not a type the aggregation supports` };
  const raw = upstream.content as Resource;
  const mapped = upstream.fhirVersion === 'STU3';
  const { id: _id, meta, ...rest } = mapped ? stu3ToR4(raw) : raw;
  const kept = meta ? { ...(meta.profile ? { profile: meta.profile } : {}), ...(meta.security ? { security: meta.security } : {}), ...(meta.tag ? { tag: meta.tag } : {}) } : {};
  const resource: Resource = { ...rest, ...(Object.keys(kept).length ? { meta: kept } : {}) };
  // Normalising a reference rewrites it in its holder, so the sites found here are the ones the copy uses.
  const sites = referenceSites(resource);
  const exclusion = checkInclusion(resource, supported, sites);
  if (exclusion) return exclusion;
  if (mapped) {
    try {
      assertValidResource('R4', { ...resource, id: 'x' });
    } catch (err) {
      if (!(err instanceof OperationOutcomeError)) throw err;
      return { rule: 'invalid-after-mapping', reason: `not valid R4 after mapping: ${err.message}` };
    }
  }
  const targets = [...new Set(sites.map((s) => relative(s.holder.reference as string)))];
  return { resource, sites, targets };
}

export const isExclusion = (p: Prepared | Exclusion): p is Exclusion => (p as Exclusion).reason !== undefined;

/** `Type/id` without any `_history` part. */
export function relative(reference: string): string {
  const t = parseRelative(reference) as { type: string; id: string };
  return `${t.type}/${t.id}`;
}

let patientParams: Map<string, string[]> | undefined;

/** The search parameters linking each type to its patient (the R4 Patient compartment). */
function patientCompartment(type: string): string[] {
  if (!patientParams) {
    patientParams = new Map();
    const def = readR4Definition<{ resource: { code: string; param?: string[] }[] }>('compartmentdefinition-patient.json');
    for (const r of def.resource) if (r.param) patientParams.set(r.code, r.param);
  }
  return patientParams.get(type) ?? [];
}

const patientPaths = new Map<string, Extractor[]>();

/** The compiled expressions of a type's Patient-compartment parameters, in the compartment's order; once per type. */
function patientExtractors(type: string): Extractor[] {
  let extractors = patientPaths.get(type);
  if (!extractors) {
    extractors = [];
    for (const code of patientCompartment(type)) {
      const def = searchParameter(type, code);
      if (def?.expression) extractors.push(compileExpression(def.expression));
    }
    patientPaths.set(type, extractors);
  }
  return extractors;
}

/**
 * The id of the Patient a resource belongs to (its first Patient-compartment reference), if any. A Group is in
 * the compartment of each patient it lists (R4 CompartmentDefinition patient: `member`) but belongs to none
 * of them: it names a population, so it has no patient, and its source is its endpoint's default organisation.
 */
export function patientOf(resource: Resource): string | undefined {
  if (POPULATION_TYPES.has(resource.resourceType)) return undefined;
  for (const extract of patientExtractors(resource.resourceType)) {
    for (const v of extract(resource)) {
      const ref = (v as { reference?: unknown })?.reference;
      const target = typeof ref === 'string' ? parseRelative(ref) : undefined;
      if (target?.type === 'Patient') return target.id;
    }
  }
  return undefined;
}

/** The configured default source organisation of an endpoint as `Organization/id`. */
export function defaultSourceOrg(upstream: Upstream): string | undefined {
  if (!upstream.defaultSourceOrg) return undefined;
  const ref = parseRelative(upstream.defaultSourceOrg);
  return ref ? `${ref.type}/${ref.id}` : `Organization/${upstream.defaultSourceOrg}`;
}
