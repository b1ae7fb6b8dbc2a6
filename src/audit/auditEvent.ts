import { randomUUID } from 'node:crypto';
import type { Caller } from '../access/caller';
import type { Resource } from '../fhir/types';

/**
 * One audited activity as an AuditEvent shaped by IHE Basic Audit Log Patterns (BALP, R4): the RESTful
 * interaction (type `rest`, subtype from FHIR's restful-interaction codes, action C/R/U/D/E), when, the
 * outcome (0 success, 4 minor failure: the caller's 4xx, 8 serious failure: ours), the agents (the client
 * as `who` and requestor with its network address; the practitioner, team, organisation or patient it acts
 * on behalf of; this server as destination), the entities (each resource returned or written, the query
 * of a search, base64), and for break-the-glass the purpose of use with its reason.
 * https://profiles.ihe.net/ITI/BALP/content.html
 * The aggregated Patients an event concerns are completed when it is written (auditLog.ts): those of the
 * resources' `agg_access` rows join the ones known here, and are named as entities when it is read.
 */
export type AuditSubtype =
  | 'read'
  | 'vread'
  | 'search-type'
  | 'search-system'
  | 'history-instance'
  | 'history-type'
  | 'history-system'
  | 'create'
  | 'update'
  | 'patch'
  | 'delete'
  | 'token-issue'
  | 'consent-grant'
  | 'consent-revoke'
  | 'break-the-glass'
  | 'access-freeze'
  | 'access-refused';

export type AuditAction = 'C' | 'R' | 'U' | 'D' | 'E';
/** FHIR R4 AuditEvent.outcome. */
export type AuditOutcome = '0' | '4' | '8' | '12';

/**
 * What the audit log writes: the columns it is searched by, and the activity as recorded (`StoredActivity`), from
 * which `auditEventResource` writes the BALP AuditEvent whenever the event is read. Events are written on every
 * request and read rarely: storing the 1.6 kB AuditEvent of a read cost PostgreSQL about 90 µs of CPU per event
 * more than this record does (issue 19, `bench/readCost.ts`).
 */
export interface AuditEntry {
  id: string;
  recorded: Date;
  /** The resource partition the entities live in (`aggregated` lets the log look up their patients). */
  store?: string;
  /** `Type/id` of every resource returned or written. */
  refs: string[];
  /** Aggregated Patient ids already known to be concerned. */
  patients: string[];
  client?: string;
  action: AuditAction;
  subtype: AuditSubtype;
  outcome: AuditOutcome;
  activity: StoredActivity;
}

/** The parts of the caller an event names. */
export type AuditCaller = Pick<Caller, 'clientId' | 'customerId' | 'organizationId' | 'teamId' | 'practitionerId' | 'patientId' | 'address'> & {
  breakGlass?: { patientId: string; reason: string };
};

/**
 * An event as stored: what its AuditEvent is written from, besides the row's id, recorded time, outcome and
 * Patients. `v` names this shape, so that rows keep their meaning if it ever changes.
 */
export interface StoredActivity {
  v: 1;
  subtype: AuditSubtype;
  /** This server's base URL when the event was recorded (the observer and destination). */
  server: string;
  caller?: AuditCaller;
  resources?: { type: string; id: string; versionId?: number | string }[];
  query?: [string, string][];
  type?: string;
  detail?: string;
  entities?: Record<string, unknown>[];
}

export interface AuditActivity {
  subtype: AuditSubtype;
  caller?: Pick<Caller, 'clientId' | 'customerId' | 'organizationId' | 'teamId' | 'practitionerId' | 'patientId' | 'breakGlass' | 'address'>;
  store?: string;
  /** Resources returned or written. */
  resources?: { type: string; id: string; versionId?: number | string }[];
  /** Search or history parameters, recorded as the query entity (base64 of the query string). */
  query?: [string, string][];
  /** The resource type searched (or asked for), when there are no resources to name it. */
  type?: string;
  /** The HTTP-like status: 2xx success; 4xx the caller's failure; 5xx ours. */
  status?: number;
  detail?: string;
  /** Aggregated Patients known to be concerned (e.g. the patient of a consent). */
  patients?: string[];
  /** Extra entities, e.g. the consent granted. */
  entities?: Record<string, unknown>[];
}

const ACTION: Record<AuditSubtype, AuditAction> = {
  read: 'R',
  vread: 'R',
  'search-type': 'E',
  'search-system': 'E',
  'history-instance': 'R',
  'history-type': 'E',
  'history-system': 'E',
  create: 'C',
  update: 'U',
  patch: 'U',
  delete: 'D',
  'token-issue': 'E',
  'consent-grant': 'C',
  'consent-revoke': 'D',
  'break-the-glass': 'E',
  'access-freeze': 'U',
  'access-refused': 'E',
};

const REST = { system: 'http://terminology.hl7.org/CodeSystem/audit-event-type', code: 'rest', display: 'RESTful Operation' };
const INTERACTION = 'http://hl7.org/fhir/restful-interaction';
const LOCAL = 'urn:tributary:audit-subtype';
const DCM = 'http://dicom.nema.org/resources/ontology/DCM';
const ENTITY_TYPE = 'http://terminology.hl7.org/CodeSystem/audit-entity-type';
const ROLE = 'http://terminology.hl7.org/CodeSystem/object-role';
const PARTICIPATION = 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType';
/** Identifier systems of our own tenancy ids. */
export const IDS = {
  client: 'urn:tributary:client',
  organization: 'urn:tributary:organization',
  team: 'urn:tributary:team',
  practitioner: 'urn:tributary:practitioner',
  server: 'urn:tributary:server',
};

const FHIR_INTERACTIONS = new Set<AuditSubtype>([
  'read',
  'vread',
  'search-type',
  'search-system',
  'history-instance',
  'history-type',
  'history-system',
  'create',
  'update',
  'patch',
  'delete',
]);

export function outcomeOf(status = 200): AuditOutcome {
  return status < 400 ? '0' : status < 500 ? '4' : '8';
}

const coding = (system: string, code: string, display?: string) => ({ system, code, ...(display ? { display } : {}) });

/** The log's record of `activity`. `serverUrl`: this server (the observer and destination). */
export function auditEntry(activity: AuditActivity, serverUrl: string): AuditEntry {
  const caller = activity.caller;
  const refs = (activity.resources ?? []).map((r) => `${r.type}/${r.id}`);
  const patients = new Set(activity.patients ?? []);
  if (activity.store === 'aggregated') for (const r of activity.resources ?? []) if (r.type === 'Patient') patients.add(r.id);
  if (caller?.patientId) patients.add(caller.patientId);
  if (caller?.breakGlass) patients.add(caller.breakGlass.patientId);
  const stored: StoredActivity = { v: 1, subtype: activity.subtype, server: serverUrl };
  if (caller) stored.caller = auditCaller(caller);
  if (activity.resources?.length)
    stored.resources = activity.resources.map((r) => (r.versionId !== undefined ? { type: r.type, id: r.id, versionId: r.versionId } : { type: r.type, id: r.id }));
  if (activity.query) stored.query = activity.query;
  if (activity.type !== undefined) stored.type = activity.type;
  if (activity.detail) stored.detail = activity.detail;
  if (activity.entities?.length) stored.entities = activity.entities;
  return {
    id: randomUUID(),
    recorded: new Date(),
    store: activity.store,
    refs,
    patients: [...patients],
    client: caller?.clientId,
    action: ACTION[activity.subtype],
    subtype: activity.subtype,
    outcome: outcomeOf(activity.status),
    activity: stored,
  };
}

/** Only the caller's fields an event names: a service's caller also holds its scopes and token times. */
function auditCaller(caller: NonNullable<AuditActivity['caller']>): AuditCaller {
  const out: AuditCaller = { clientId: caller.clientId };
  for (const key of ['customerId', 'organizationId', 'teamId', 'practitionerId', 'patientId', 'address'] as const) if (caller[key]) out[key] = caller[key];
  if (caller.breakGlass) out.breakGlass = { patientId: caller.breakGlass.patientId, reason: caller.breakGlass.reason };
  return out;
}

/** A stored event (auditLog.ts) as read: its row's columns and its activity. */
export interface StoredAuditEvent {
  id: string;
  recorded: Date;
  outcome: string;
  /** Every aggregated Patient the event concerns, sorted (the log adds those of its resources' compartments). */
  patientIds: string[];
  activity: StoredActivity;
}

/**
 * The BALP AuditEvent of a stored event. The Patients of `patientIds` that no entity names already are added as
 * Patient entities, after the others.
 */
export function auditEventResource(event: StoredAuditEvent): Resource {
  const activity = event.activity;
  const serverUrl = activity.server;
  const caller = activity.caller;

  const agent: Record<string, unknown>[] = [];
  if (caller) {
    agent.push({
      type: { coding: [coding(DCM, '110153', 'Source Role ID')] },
      who: { identifier: { system: IDS.client, value: caller.clientId }, display: caller.customerId ? `client of ${caller.customerId}` : 'admin' },
      requestor: !(caller.practitionerId || caller.patientId),
      ...(caller.address ? { network: { address: caller.address, type: '2' } } : {}),
      ...(caller.breakGlass
        ? { purposeOfUse: [{ coding: [coding('http://terminology.hl7.org/CodeSystem/v3-ActReason', 'BTG', 'break the glass')], text: caller.breakGlass.reason }] }
        : {}),
    });
    // On whose behalf: the user the client is bound to (requestor), or the team / organisation it acts for.
    if (caller.practitionerId) agent.push(onBehalf(IDS.practitioner, caller.practitionerId, true, 'practitioner'));
    if (caller.patientId) agent.push({ ...onBehalf('', caller.patientId, true, 'patient'), who: { reference: `Patient/${caller.patientId}` } });
    if (caller.teamId) agent.push(onBehalf(IDS.team, caller.teamId, false, 'team'));
    if (caller.organizationId) agent.push(onBehalf(IDS.organization, caller.organizationId, false, 'organization'));
  }
  agent.push({
    type: { coding: [coding(DCM, '110152', 'Destination Role ID')] },
    who: { identifier: { system: IDS.server, value: serverUrl } },
    requestor: false,
    network: { address: serverUrl, type: '5' },
  });

  const entity: Record<string, unknown>[] = [];
  const named = new Set<string>();
  for (const r of activity.resources ?? []) {
    named.add(`${r.type}/${r.id}`);
    const reference = r.versionId !== undefined ? `${r.type}/${r.id}/_history/${r.versionId}` : `${r.type}/${r.id}`;
    entity.push(
      r.type === 'Patient'
        ? { what: { reference }, type: coding(ENTITY_TYPE, '1', 'Person'), role: coding(ROLE, '1', 'Patient') }
        : { what: { reference }, type: coding(ENTITY_TYPE, '2', 'System Object'), role: coding(ROLE, '4', 'Domain Resource') },
    );
  }
  if (activity.query) {
    const text = `${activity.type ?? ''}?${new URLSearchParams(activity.query).toString()}`;
    entity.push({ type: coding(ENTITY_TYPE, '2', 'System Object'), role: coding(ROLE, '24', 'Query'), description: text, query: Buffer.from(text).toString('base64') });
  } else if (activity.type && (activity.resources ?? []).length === 0) {
    entity.push({ type: coding(ENTITY_TYPE, '2', 'System Object'), role: coding(ROLE, '4', 'Domain Resource'), description: activity.type });
  }
  entity.push(...(activity.entities ?? []));
  for (const id of event.patientIds) {
    if (!named.has(`Patient/${id}`)) entity.push({ what: { reference: `Patient/${id}` }, type: coding(ENTITY_TYPE, '1', 'Person'), role: coding(ROLE, '1', 'Patient') });
  }

  return {
    resourceType: 'AuditEvent',
    id: event.id,
    meta: {
      profile: [
        FHIR_INTERACTIONS.has(activity.subtype)
          ? 'https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.OAUTHaccessTokenUse.Minimal'
          : 'https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit',
      ],
    },
    type: REST,
    subtype: [FHIR_INTERACTIONS.has(activity.subtype) ? coding(INTERACTION, activity.subtype) : coding(LOCAL, activity.subtype)],
    action: ACTION[activity.subtype],
    recorded: new Date(event.recorded).toISOString(),
    outcome: event.outcome,
    ...(activity.detail ? { outcomeDesc: activity.detail } : {}),
    agent,
    source: {
      site: serverUrl,
      observer: { identifier: { system: IDS.server, value: serverUrl }, display: 'Tributary' },
      type: [coding('http://terminology.hl7.org/CodeSystem/security-source-type', '4', 'Application Server')],
    },
    ...(entity.length ? { entity } : {}),
  };
}

function onBehalf(system: string, value: string, requestor: boolean, role: string): Record<string, unknown> {
  return {
    type: { coding: [coding(PARTICIPATION, requestor ? 'IRCP' : 'RESP', requestor ? 'information recipient' : 'responsible party')] },
    role: [{ text: role }],
    who: { identifier: { system, value } },
    requestor,
  };
}

/** The ids of the resources of a search Bundle (matches and includes): what a search returned. */
export function bundleResources(bundle: { entry?: { resource?: Resource }[] }): { type: string; id: string }[] {
  return (bundle.entry ?? []).flatMap((e) => (e.resource?.id && e.resource.resourceType !== 'OperationOutcome' ? [{ type: e.resource.resourceType, id: e.resource.id }] : []));
}
