/**
 * The viewer's GraphQL documents and the shapes it reads from them. Every read is one POST to /graphql
 * with the signed-in token; the server decides what the caller may see.
 */
import { post } from '../shared/graphqlClient';

export const SOURCE_ORG = 'http://fhir.patientsknowbest.com/codesystem/source-organization';

export interface Coding {
  system?: string;
  code?: string;
  display?: string;
}
export interface CodeableConcept {
  text?: string;
  coding?: Coding[];
}
export interface Meta {
  security?: Coding[];
}
export interface HumanName {
  use?: string;
  family?: string;
  given?: string[];
  text?: string;
}
export interface PatientSummary {
  id: string;
  name?: HumanName[];
  birthDate?: string;
  gender?: string;
  identifier?: { system?: string; value?: string }[];
}
export interface Entry {
  id: string;
  meta?: Meta;
  code?: CodeableConcept;
  vaccineCode?: CodeableConcept;
  medicationCodeableConcept?: CodeableConcept;
  type?: CodeableConcept[];
  class?: Coding;
  period?: { start?: string; end?: string };
  onsetDateTime?: string;
  recordedDate?: string;
  authoredOn?: string;
  occurrenceDateTime?: string;
  effectiveDateTime?: string;
  issued?: string;
  valueQuantity?: { value?: number; unit?: string; code?: string };
}
export interface PatientRecord extends PatientSummary {
  telecom?: { system?: string; value?: string }[];
  address?: { line?: string[]; city?: string; postalCode?: string }[];
  EncounterList: Entry[];
  ConditionList: Entry[];
  MedicationRequestList: Entry[];
  AllergyIntoleranceList: Entry[];
  ImmunizationList: Entry[];
  ObservationList: Entry[];
}
export interface Aggregation {
  rule: string;
  members: { endpoint: string; customer: string; upstreamType: string; upstreamId: string; lastUpdated: string | null }[];
  otherSources: number;
  elementSources: { element: string; endpoint: string | null; upstreamId: string | null }[];
}

export class GraphqlFailure extends Error {}

async function run<T>(query: string, variables: Record<string, unknown>, authorization: string): Promise<T> {
  const result = await post<T>({ query, variables }, authorization);
  if (result.errors?.length && !result.data) throw new GraphqlFailure(result.errors.map((e) => e.message).join('; '));
  return result.data as T;
}

const SUMMARY = 'id name { use family given text } birthDate gender identifier { system value }';

/** Patients by name (family or given) or, for digits, by identifier value (an NHS number). */
export async function findPatients(text: string, authorization: string): Promise<PatientSummary[]> {
  const byIdentifier = /^[\d\s]+$/.test(text);
  const query = byIdentifier
    ? `query ($q: String) { PatientList(identifier: $q, _count: 20) { ${SUMMARY} } }`
    : `query ($q: String) { PatientList(name: $q, _count: 20) { ${SUMMARY} } }`;
  const data = await run<{ PatientList: (PatientSummary | null)[] }>(query, { q: byIdentifier ? text.replace(/\s/g, '') : text }, authorization);
  return data.PatientList.filter((p): p is PatientSummary => !!p);
}

const ENTRY = 'id meta { security { system code } }';
const RECORD = `query ($id: ID!) {
  Patient(id: $id) {
    ${SUMMARY}
    telecom { system value }
    address { line city postalCode }
    EncounterList(_reference: patient, _count: 200) { ${ENTRY} class { code display } type { text coding { display code } } period { start end } }
    ConditionList(_reference: patient, _count: 200) { ${ENTRY} code { text coding { display code } } onsetDateTime recordedDate }
    MedicationRequestList(_reference: patient, _count: 200) { ${ENTRY} medicationCodeableConcept { text coding { display code } } authoredOn }
    AllergyIntoleranceList(_reference: patient, _count: 200) { ${ENTRY} code { text coding { display code } } recordedDate onsetDateTime }
    ImmunizationList(_reference: patient, _count: 200) { ${ENTRY} vaccineCode { text coding { display code } } occurrenceDateTime }
    ObservationList(_reference: subject, _count: 500) { ${ENTRY} code { text coding { system code display } } effectiveDateTime issued valueQuantity { value unit code } }
  }
  aggregation(resourceType: "Patient", id: $id) {
    rule otherSources
    members { endpoint customer upstreamType upstreamId lastUpdated }
    elementSources { element endpoint upstreamId }
  }
}`;

export async function loadRecord(id: string, authorization: string): Promise<{ patient: PatientRecord; aggregation: Aggregation | null }> {
  const result = await post<{ Patient: PatientRecord | null; aggregation: Aggregation | null }>({ query: RECORD, variables: { id } }, authorization);
  if (!result.data?.Patient) throw new GraphqlFailure(result.errors?.map((e) => e.message).join('; ') || `Patient ${id} was not found`);
  return { patient: result.data.Patient, aggregation: result.data.aggregation ?? null };
}

/** Organisation names by aggregated id (the source organisations named in meta.security). */
export async function organizationNames(ids: string[], authorization: string): Promise<Map<string, string>> {
  if (!ids.length) return new Map();
  type Org = { id: string; name?: string };
  const data: { OrganizationList: (Org | null)[] } = await run<{ OrganizationList: (Org | null)[] }>(
    'query ($ids: String) { OrganizationList(_id: $ids, _count: 100) { id name } }',
    { ids: ids.join(',') },
    authorization,
  ).catch(() => ({ OrganizationList: [] }));
  const found = data.OrganizationList.filter((o): o is Org => o !== null);
  return new Map(found.map((o) => [o.id, o.name ?? o.id]));
}

export const RECORD_CHANGES = `subscription ($id: ID!, $since: String) {
  patientRecordChanged(patient: $id, since: $since) { cursor type id versionId change }
}`;

export interface RecordChangeEvent {
  cursor: string;
  type: string;
  id: string;
  versionId: string;
  change: string;
}

export function sourceOrg(entry: { meta?: Meta }): string | undefined {
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
