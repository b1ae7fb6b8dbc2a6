/**
 * The viewer's reads: the documents in viewer.graphql, typed by GraphQL codegen (`npm run codegen` writes
 * src/generated/graphql/operations.ts from the committed schema, so a field the server no longer has fails the
 * build). Every read is one POST to /graphql with the signed-in token; the server decides what the caller may
 * see. Results are read as `Present<…>` of their generated types: GraphQL's nulls dropped, lists without nulls.
 */
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { print } from 'graphql';
import {
  ViewerAggregationReportDocument,
  ViewerOrganizationNamesDocument,
  ViewerPatientRecordDocument,
  ViewerPatientsByIdentifierDocument,
  ViewerPatientsByNameDocument,
  ViewerRecordChangesDocument,
  type ViewerAggregationReportQuery,
  type ViewerPatientRecordQuery,
  type ViewerPatientSummaryFragment,
  type ViewerRecordChangesSubscription,
} from '../../src/generated/graphql/operations';
import { post } from '../shared/graphqlClient';

export const SOURCE_ORG = 'http://fhir.patientsknowbest.com/codesystem/source-organization';

type NullableKeys<T> = { [K in keyof T]-?: null extends T[K] ? K : never }[keyof T];
/** A generated result type as the viewer reads it: nullable fields optional, list elements never null. */
export type Present<T> = T extends readonly (infer E)[]
  ? Present<NonNullable<E>>[]
  : T extends object
    ? { [K in Exclude<keyof T, NullableKeys<T>>]: Present<T[K]> } & { [K in NullableKeys<T>]?: Present<NonNullable<T[K]>> }
    : T;

/** Drops GraphQL's nulls (absent fields, null list elements), as `Present` says. */
export function present<T>(value: T): Present<T> {
  if (Array.isArray(value)) return value.filter((v) => v !== null && v !== undefined).map(present) as Present<T>;
  if (value && typeof value === 'object')
    return Object.fromEntries(
      Object.entries(value)
        .filter(([, v]) => v !== null)
        .map(([k, v]) => [k, present(v)]),
    ) as Present<T>;
  return value as Present<T>;
}

type Record_ = NonNullable<ViewerPatientRecordQuery['Patient']>;
export type PatientSummary = Present<ViewerPatientSummaryFragment>;
export type PatientRecord = Present<Record_>;
export type Aggregation = Present<NonNullable<ViewerPatientRecordQuery['aggregation']>>;
export type AggregationReport = Present<ViewerAggregationReportQuery['aggregationReport']>;
export type RecordChangeEvent = ViewerRecordChangesSubscription['patientRecordChanged'];
type Item<K extends keyof Record_> = Present<NonNullable<NonNullable<Record_[K]>[number]>>;
export type ObservationEntry = Item<'ObservationList'>;
/** Any entry of the record's lists, as the timeline and the chart read it (each list's own fields, all optional but the id). */
export type Entry = Partial<
  Item<'EncounterList'> & Item<'ConditionList'> & Item<'MedicationRequestList'> & Item<'AllergyIntoleranceList'> & Item<'ImmunizationList'> & Item<'ObservationList'>
>;
interface Coding {
  system?: string;
  code?: string;
  display?: string;
}
interface CodeableConcept {
  text?: string;
  coding?: Coding[];
}

export class GraphqlFailure extends Error {}

async function run<T, V extends Record<string, unknown>>(document: TypedDocumentNode<T, V>, variables: V, authorization: string): Promise<{ data?: T; errors?: string }> {
  const result = await post<T>({ query: print(document), variables }, authorization);
  return { data: result.data ?? undefined, errors: result.errors?.map((e) => e.message).join('; ') };
}

async function required<T, V extends Record<string, unknown>>(document: TypedDocumentNode<T, V>, variables: V, authorization: string): Promise<T> {
  const { data, errors } = await run(document, variables, authorization);
  if (!data) throw new GraphqlFailure(errors || 'No answer');
  return data;
}

/** Patients by name (family or given) or, for digits, by identifier value (an NHS number). */
export async function findPatients(text: string, authorization: string): Promise<PatientSummary[]> {
  const byIdentifier = /^[\d\s]+$/.test(text);
  const data = byIdentifier
    ? await required(ViewerPatientsByIdentifierDocument, { q: text.replace(/\s/g, '') }, authorization)
    : await required(ViewerPatientsByNameDocument, { q: text }, authorization);
  return present(data.PatientList ?? []) as PatientSummary[];
}

export async function loadRecord(id: string, authorization: string): Promise<{ patient: PatientRecord; aggregation: Aggregation | null }> {
  const { data, errors } = await run(ViewerPatientRecordDocument, { id }, authorization);
  if (!data?.Patient) throw new GraphqlFailure(errors || `Patient ${id} was not found`);
  return { patient: present(data.Patient), aggregation: data.aggregation ? present(data.aggregation) : null };
}

/** Organisation names by aggregated id (the source organisations named in meta.security). */
export async function organizationNames(ids: string[], authorization: string): Promise<Map<string, string>> {
  if (!ids.length) return new Map();
  const { data } = await run(ViewerOrganizationNamesDocument, { ids: ids.join(',') }, authorization).catch(() => ({ data: undefined }));
  const found = present(data?.OrganizationList ?? []);
  return new Map(found.filter((o) => o.id).map((o) => [o.id as string, o.name ?? (o.id as string)]));
}

/**
 * The aggregation report of each endpoint (the caller's own, as the merge provenance names them): what was
 * excluded and why. An endpoint whose report the caller may not read (not its own) is left out.
 */
export async function aggregationReports(endpoints: string[], authorization: string): Promise<AggregationReport[]> {
  const reports = await Promise.all(endpoints.map((endpoint) => run(ViewerAggregationReportDocument, { endpoint }, authorization).catch(() => ({ data: undefined }))));
  return reports.flatMap((r) => (r.data?.aggregationReport ? [present(r.data.aggregationReport)] : []));
}

export const RECORD_CHANGES = print(ViewerRecordChangesDocument);

export function sourceOrg(entry: { meta?: { security?: Coding[] } }): string | undefined {
  return entry.meta?.security?.find((c) => c.system === SOURCE_ORG)?.code;
}

export function conceptText(c?: CodeableConcept): string {
  return c?.text ?? c?.coding?.find((x) => x.display)?.display ?? c?.coding?.[0]?.code ?? '—';
}

export function displayName(p: PatientSummary): string {
  const n = p.name?.find((x) => x.use === 'official') ?? p.name?.[0];
  if (!n) return `Patient ${p.id}`;
  return n.text ?? [...(n.given ?? []), n.family].filter(Boolean).join(' ');
}
