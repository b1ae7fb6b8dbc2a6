import { ID_SOURCE } from '../fhir/ids';
import { isFhirDecimal } from '../fhir/losslessJson';
import { elementOfKey, referenceElementPaths, topLevelElements } from '../fhir/structure';
import type { Coding, Resource } from '../fhir/types';
import type { ExclusionRule } from './exclusionRules';
import { aggregatedType } from './aggregatedType';

/**
 * The aggregation rules of DESIGN §3 as pure functions over plain JSON: which resources are included,
 * how references are normalised, which keys group merged types, and how a group merges. No I/O here.
 */
export const SOURCE_SYSTEM = {
  organization: 'http://fhir.patientsknowbest.com/codesystem/source-organization',
  patient: 'http://fhir.patientsknowbest.com/codesystem/source-patient',
  practitioner: 'http://fhir.patientsknowbest.com/codesystem/source-practitioner',
  team: 'http://fhir.patientsknowbest.com/codesystem/source-team',
} as const;
const SOURCE_SYSTEMS = new Set<string>(Object.values(SOURCE_SYSTEM));
export const PRIVACY_LABEL_SYSTEM = 'http://fhir.patientsknowbest.com/codesystem/privacy-label';
export const PRIVACY_LABELS = ['GENERAL_HEALTH', 'MENTAL_HEALTH', 'SEXUAL_HEALTH', 'SOCIAL_CARE'] as const;

/** The aggregation's CapabilityStatement by default: PKB's published list (DESIGN §3.1); AGGREGATED_TYPES changes it (config.ts). */
export const SUPPORTED_TYPES: readonly string[] = [
  'AllergyIntolerance',
  'Appointment',
  'CarePlan',
  'CareTeam',
  'ChargeItem',
  'Communication',
  'Composition',
  'Condition',
  'Consent',
  'Device',
  'DeviceRequest',
  'DeviceUseStatement',
  'DiagnosticReport',
  'DocumentReference',
  'Encounter',
  'EpisodeOfCare',
  'Flag',
  'HealthcareService',
  'Immunization',
  'ImmunizationRecommendation',
  'Location',
  'Medication',
  'MedicationAdministration',
  'MedicationDispense',
  'MedicationRequest',
  'MedicationStatement',
  'NutritionOrder',
  'Observation',
  'Organization',
  'Patient',
  'Person',
  'Practitioner',
  'PractitionerRole',
  'Procedure',
  'Questionnaire',
  'QuestionnaireResponse',
  'RelatedPerson',
  'ServiceRequest',
  'Specimen',
];

/** Types in the Patient compartment of every patient they list, owned by none of them (upstream.ts `patientOf`). */
export const POPULATION_TYPES: ReadonlySet<string> = new Set(['Group']);

export type GroupingRule = 'identifier' | 'code' | 'link-target' | 'practitioner-organization';
export const MERGED_TYPES: Record<string, GroupingRule> = {
  Patient: 'identifier',
  Practitioner: 'identifier',
  Organization: 'identifier',
  Medication: 'code',
  Person: 'link-target',
  PractitionerRole: 'practitioner-organization',
};

export interface Exclusion {
  reason: string;
  /** Which rule excluded it (exclusionRules.ts); recorded for the aggregation report. Absent: `other`. */
  rule?: ExclusionRule;
  expression?: string;
  /** The `Type/id` target whose absence (or exclusion) caused this: its arrival queues the resource again. */
  waitingFor?: string;
  /** The referenced type the exclusion is about, when it names one but no target (`reference-to-unsupported-type`). */
  targetType?: string;
}

/**
 * The resource type an exclusion is about (`agg_member.target_type`), as the upstream reference names it: the
 * type it names, or that of the target it waits for; undefined for a rule about the resource itself. Recorded
 * beside the reason so that what depends on it (the requeue on a change of AGGREGATED_TYPES, the report)
 * reads a column rather than the wording of the reason.
 */
export function exclusionTarget(exclusion: Exclusion): string | undefined {
  return exclusion.targetType ?? (exclusion.waitingFor === undefined ? undefined : parseRelative(exclusion.waitingFor)?.type);
}

export interface ReferenceSite {
  /** FHIRPath-like location, e.g. `MedicationStatement.subject`. */
  expression: string;
  holder: Record<string, unknown>;
}

/**
 * Every Reference in a resource with its location: elements typed Reference in the StructureDefinition,
 * plus any nested object carrying a `reference` string (References inside datatypes).
 *
 * Runs on every aggregated resource: primitives are skipped before any path is built, and a site's
 * expression is spelled out only when one is found (most nodes hold none).
 */
export function referenceSites(resource: Resource): ReferenceSite[] {
  const typed = referenceElementPaths(resource.resourceType);
  const sites: ReferenceSite[] = [];
  // The steps from the root to the node being visited: a key (`.key`) or an array index (`[i]`).
  const steps: (string | number)[] = [];
  const expression = () => resource.resourceType + steps.map((s) => (typeof s === 'number' ? `[${s}]` : `.${s}`)).join('');
  const descend = (node: object, defPath: string): void => {
    if (Array.isArray(node)) {
      for (let i = 0; i < node.length; i++) {
        const item: unknown = node[i];
        if (item === null || typeof item !== 'object') continue;
        steps.push(i);
        descend(item, defPath);
        steps.pop();
      }
      return;
    }
    const obj = node as Record<string, unknown>;
    if (steps.length) {
      // A choice element holding a Reference appears as `valueReference` for the definition path `value[x]`.
      const isTyped = typed.has(defPath) || (defPath.endsWith('Reference') && typed.has(`${defPath.slice(0, -'Reference'.length)}[x]`));
      if (isTyped || typeof obj.reference === 'string') {
        sites.push({ expression: expression(), holder: obj });
        return;
      }
    }
    for (const key of Object.keys(obj)) {
      if (key === 'contained' || key.startsWith('_')) continue;
      const value = obj[key];
      if (value === null || typeof value !== 'object') continue;
      steps.push(key);
      descend(value, `${defPath}.${key}`);
      steps.pop();
    }
  };
  descend(resource, resource.resourceType);
  return sites;
}

const RELATIVE_REFERENCE = new RegExp(`^([A-Z][A-Za-z]+)/(${ID_SOURCE})(?:/_history/[^/]+)?$`);
const ABSOLUTE_REFERENCE = new RegExp(`^https?://.+/([A-Z][A-Za-z]+/${ID_SOURCE})(/_history/[^/]+)?$`);

/** `Type/id` of a relative reference. */
export function parseRelative(reference: string): { type: string; id: string } | undefined {
  const m = RELATIVE_REFERENCE.exec(reference);
  return m ? { type: m[1], id: m[2] } : undefined;
}

/** `http://x/fhir/Patient/123` → `Patient/123` (DESIGN §3.2: the server part is ignored). */
export function stripServer(reference: string): string {
  const m = ABSOLUTE_REFERENCE.exec(reference);
  return m ? m[1] : reference;
}

/**
 * The inclusion rules (DESIGN §3.2). Returns the first reason to exclude, or undefined. Absolute
 * references are normalised in place as a side effect of checking them. `sites`: the resource's
 * referenceSites, when the caller has them already.
 */
export function checkInclusion(resource: Resource, supported: ReadonlySet<string>, sites: ReferenceSite[] = referenceSites(resource)): Exclusion | undefined {
  const type = resource.resourceType;
  for (const site of sites) {
    const ref = site.holder.reference;
    if (typeof ref !== 'string') {
      return { rule: 'identifier-only-reference', reason: `${site.expression} has no 'reference' (identifier-only references are not resolved)`, expression: site.expression };
    }
    if (ref.startsWith('#')) return { rule: 'contained-reference', reason: `${site.expression} is a contained reference ('${ref}')`, expression: site.expression };
    const local = stripServer(ref);
    const parsed = parseRelative(local);
    if (!parsed)
      return { rule: 'reference-not-resolvable', reason: `${site.expression} ('${ref}') is not a reference to a resource with a persistent identity`, expression: site.expression };
    if (!supported.has(aggregatedType(parsed.type))) {
      return {
        rule: 'reference-to-unsupported-type',
        reason: `${site.expression} refers to ${parsed.type}, which the aggregation does not support`,
        expression: site.expression,
        targetType: parsed.type,
      };
    }
    site.holder.reference = local;
  }
  const rule = MERGED_TYPES[type];
  if (rule === 'identifier') {
    const ids = resource.identifier as { system?: string; value?: string }[] | undefined;
    if (!Array.isArray(ids) || ids.length === 0)
      return { rule: 'identifier-missing', reason: `${type} needs at least one identifier to be merged`, expression: `${type}.identifier` };
    const i = ids.findIndex((x) => !x.system);
    if (i >= 0) return { rule: 'identifier-without-system', reason: `${type}.identifier[${i}] has no system`, expression: `${type}.identifier[${i}]` };
  } else if (rule === 'code') {
    const codings = (resource.code as { coding?: Coding[] } | undefined)?.coding;
    if (!Array.isArray(codings) || codings.length === 0)
      return { rule: 'code-coding-missing', reason: `${type} needs code.coding to be merged`, expression: `${type}.code.coding` };
    const i = codings.findIndex((c) => !c.system);
    if (i >= 0) return { rule: 'coding-without-system', reason: `${type}.code.coding[${i}] has no system`, expression: `${type}.code.coding[${i}]` };
  } else if (rule === 'link-target') {
    const links = resource.link as { target?: { reference?: string } }[] | undefined;
    if (!Array.isArray(links) || !links.some((l) => l.target?.reference))
      return { rule: 'link-target-missing', reason: 'Person needs link.target', expression: 'Person.link.target' };
  } else if (rule === 'practitioner-organization') {
    if (!(resource.practitioner as { reference?: string } | undefined)?.reference)
      return { rule: 'practitioner-missing', reason: 'PractitionerRole needs practitioner', expression: 'PractitionerRole.practitioner' };
    if (!(resource.organization as { reference?: string } | undefined)?.reference)
      return { rule: 'organization-missing', reason: 'PractitionerRole needs organization', expression: 'PractitionerRole.organization' };
  }
  return undefined;
}

/** The keys that put resources of a merged type in one group (before reference rewriting for links). */
export function groupKeys(resource: Resource, mapped: (ref: string) => string = (r) => r): string[] {
  switch (MERGED_TYPES[resource.resourceType]) {
    case 'identifier':
      return ((resource.identifier as { system: string; value?: string }[]) ?? []).filter((i) => i.value !== undefined).map((i) => `${i.system}|${i.value}`);
    case 'code':
      return ((resource.code as { coding: Coding[] }).coding ?? []).filter((c) => c.code !== undefined).map((c) => `${c.system}|${c.code}`);
    case 'link-target':
      return ((resource.link as { target?: { reference?: string } }[]) ?? []).filter((l) => l.target?.reference).map((l) => mapped(l.target!.reference as string));
    case 'practitioner-organization':
      return [`${mapped((resource.practitioner as { reference: string }).reference)}|${mapped((resource.organization as { reference: string }).reference)}`];
    default:
      return [];
  }
}

export interface Member {
  resource: Resource;
  /** Upstream meta.lastUpdated. */
  lastUpdated: string;
  store: string;
  id: string;
}

/** Most recently updated first; ties by endpoint id, then upstream id (DESIGN §3: our documented choice). */
export function orderMembers(members: Member[]): Member[] {
  return [...members].sort((a, b) => (a.lastUpdated < b.lastUpdated ? 1 : a.lastUpdated > b.lastUpdated ? -1 : a.store.localeCompare(b.store) || a.id.localeCompare(b.id)));
}

/** Removes extensions on primitives (`_x` keys) everywhere, and, for Medication, extensions on codings. */
function stripExtensions(node: unknown, type: string, path: string): unknown {
  if (Array.isArray(node)) return node.map((n) => stripExtensions(n, type, path));
  if (!node || typeof node !== 'object' || isFhirDecimal(node)) return node;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(node as Record<string, unknown>)) {
    if (key.startsWith('_')) continue;
    if (type === 'Medication' && key === 'extension' && /\.coding$/.test(path)) continue;
    out[key] = stripExtensions(value, type, `${path}.${key}`);
  }
  return out;
}

/**
 * Merges a group (DESIGN §3.5): root extensions by URL (one per URL, the most recently updated upstream's;
 * the first within one upstream), multi-valued elements concatenated newest upstream first without
 * de-duplication, single-valued elements from the most recently updated upstream that has them
 * (Practitioner: not copied; the narrative `text` is one of them), extensions on primitives dropped, `meta`
 * as mergedTags says. Keys come out in StructureDefinition order.
 */
export function mergeGroup(type: string, members: Member[]): Resource {
  const ordered = orderMembers(members).map((m) => stripExtensions(m.resource, type, type) as Resource);
  const values = new Map<string, unknown>();
  const extensions: { url: string }[] = [];
  const seenUrls = new Set<string>();
  for (const resource of ordered) {
    const own = new Set<string>();
    for (const ext of (resource.extension as { url: string }[] | undefined) ?? []) {
      if (own.has(ext.url) || seenUrls.has(ext.url)) continue;
      own.add(ext.url);
      extensions.push(ext);
    }
    for (const url of own) seenUrls.add(url);
  }
  for (const element of topLevelElements(type)) {
    if (['id', 'meta', 'extension', 'contained'].includes(element.name)) continue;
    if (type === 'Patient' && element.name === 'managingOrganization') continue;
    if (element.repeats) {
      const all = ordered.flatMap((r) => (r[element.name] as unknown[] | undefined) ?? []);
      if (all.length) values.set(element.name, all);
    } else {
      if (type === 'Practitioner') continue;
      for (const r of ordered) {
        const key = Object.keys(r).find((k) => elementOfKey(type, k)?.name === element.name);
        if (key !== undefined) {
          values.set(key, r[key]);
          break;
        }
      }
    }
  }
  const merged: Resource = { resourceType: type };
  const tags = mergedTags(ordered);
  if (tags.length) merged.meta = { tag: tags };
  if (extensions.length) merged.extension = extensions;
  for (const [key, value] of values) merged[key] = value;
  return merged;
}

/**
 * `meta` of a merged resource (our choice; README, Aggregation): `tag` is every member's tags, newest member
 * first, one per system|code (tags label the data, and a label on any member still applies to the merge);
 * `profile` is dropped (a member's claim to conform to a profile says nothing of the merge of several), as
 * is `security` (merged types carry no source codings, DESIGN §3.7) and the server-owned rest.
 */
function mergedTags(ordered: Resource[]): Coding[] {
  const seen = new Set<string>();
  const out: Coding[] = [];
  for (const r of ordered) {
    for (const tag of r.meta?.tag ?? []) {
      const key = `${tag.system ?? ''}|${tag.code ?? ''}`;
      if (seen.has(key)) continue;
      seen.add(key);
      out.push(tag);
    }
  }
  return out;
}

/**
 * Organization: "extensions on the identifier element will be copied over but will not be updated"
 * (reference/aggregated-endpoint.txt). An identifier (system|value) the member already had keeps the
 * extensions it was first aggregated with — none, if it arrived without — whatever the update says; an
 * identifier new to the member brings its own. `previous` is the member's last aggregated form.
 */
export function keepFirstIdentifierExtensions(previous: Resource | undefined, next: Resource): Resource {
  type Identifier = { system?: string; value?: string; extension?: unknown[] };
  const before = new Map<string, Identifier>();
  for (const i of (previous?.identifier as Identifier[] | undefined) ?? []) {
    const key = `${i.system}|${i.value}`;
    if (!before.has(key)) before.set(key, i);
  }
  if (!before.size || !Array.isArray(next.identifier)) return next;
  const identifier = (next.identifier as Identifier[]).map((i) => {
    const first = before.get(`${i.system}|${i.value}`);
    if (!first) return i;
    const { extension: _updated, ...rest } = i;
    return first.extension ? { extension: first.extension, ...rest } : rest;
  });
  return { ...next, identifier };
}

/** Removes client-supplied source codings and adds ours (DESIGN §3.7). */
export function withSourceTracking(resource: Resource, sources: Partial<Record<keyof typeof SOURCE_SYSTEM, string>>): Resource {
  const meta = { ...(resource.meta ?? {}) };
  const security = (meta.security ?? []).filter((c) => !SOURCE_SYSTEMS.has(c.system ?? ''));
  for (const [kind, code] of Object.entries(sources)) if (code) security.push({ system: SOURCE_SYSTEM[kind as keyof typeof SOURCE_SYSTEM], code });
  meta.security = security;
  return { ...resource, meta };
}

/** The resource's privacy label (one per data point), if any. */
export function privacyLabel(resource: Resource): string | undefined {
  return resource.meta?.security?.find((c) => c.system === PRIVACY_LABEL_SYSTEM)?.code;
}

/** JSON with object keys sorted, so jsonb's own key order does not look like a change. */
function canonical(value: unknown): string {
  if (isFhirDecimal(value)) return value.toString();
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    return `{${Object.keys(value as object)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((value as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}

/** Everything but the server-owned meta, for "did the merged content change?". */
export function contentKey(resource: Resource): string {
  const { meta, id: _id, ...rest } = resource;
  const { versionId: _v, lastUpdated: _l, ...keptMeta } = meta ?? {};
  return canonical({ ...rest, meta: keptMeta });
}

/**
 * Which upstream member supplied each single-valued element of a merged resource (the most recently
 * updated member that has it): the provenance GraphQL exposes. Practitioner copies none.
 */
export function elementSources(type: string, members: Member[]): { element: string; store: string; id: string }[] {
  if (type === 'Practitioner') return [];
  const ordered = orderMembers(members);
  const out: { element: string; store: string; id: string }[] = [];
  for (const element of topLevelElements(type)) {
    if (element.repeats || ['id', 'meta', 'extension', 'contained'].includes(element.name)) continue;
    if (type === 'Patient' && element.name === 'managingOrganization') continue;
    const source = ordered.find((m) => Object.keys(m.resource).some((k) => elementOfKey(type, k)?.name === element.name));
    if (source) out.push({ element: element.name, store: source.store, id: source.id });
  }
  return out;
}
