import { randomUUID } from 'node:crypto';
import { actingAs } from '../support/accessModel';
import { subscribe } from '../support/liveClient';
import { aggregatedId, putResource, startTestServer, type Tenant, type TestServer } from '../support/testServer';

/**
 * The leak matrix (DESIGN §4): every door of the aggregated record × every kind of caller × every kind of
 * data. A hidden resource H must never appear, and no status, total, entry count, link or message may differ
 * from the answer about a "ghost" — the same shape of query for an id/code/value that exists nowhere. A
 * visible resource must appear. One world, built once; one test per cell.
 *
 * The world, all about one merged Patient P (A's and B's feeds share its NHS number) unless said otherwise:
 * - A supplies Observations labelled GENERAL, MENTAL, SOCIAL and one unlabelled, plus `r`, a Patient only A
 *   knows; B supplies SEXUAL, MENTAL, unlabelled, and `q`, a Patient only B knows; G and N each supply
 *   one Observation about a Patient of their own.
 * - P granted the teams A, B, G and N act as SEXUAL_HEALTH, GENERAL_HEALTH, MENTAL_HEALTH and SOCIAL_CARE.
 * - "Panels" (Observation.hasMember) of each label point at their source's Observations, so a visible
 *   resource refers to a hidden one (chains, _include, Reference.resource).
 * - Every Patient's general practitioner is the one merged (shared) Practitioner.
 * - Each customer supplies a Group of all its own Patients (Group is aggregated here: AGGREGATED_TYPES=+Group).
 * - Three more callers: P itself (a patient-scoped token: all of P, nothing else), G's client holding
 *   break-the-glass on P (its own data and all of P), and N's client acting as a practitioner to whom P
 *   granted GENERAL_HEALTH (N's own data and P's GENERAL_HEALTH).
 */
const NHS = 'https://fhir.nhs.uk/Id/nhs-number';
const LABEL = 'http://fhir.patientsknowbest.com/codesystem/privacy-label';
const GP = 'https://example.org/gp';
const CODE = 'urn:x';
type Json = Record<string, any>;
type CallerKey = 'A' | 'B' | 'G' | 'N';
/** The customers' clients (each acting as its team), P's own patient-scoped token, G's client with break-the-glass on P, N's client acting as a practitioner. */
type Viewer = CallerKey | 'P' | 'X' | 'D';
type Label = 'GENERAL_HEALTH' | 'MENTAL_HEALTH' | 'SEXUAL_HEALTH' | 'SOCIAL_CARE';

interface ObsSpec {
  key: string;
  source: CallerKey;
  patient: string;
  label?: Label;
  members?: string[];
}

const A_P = ['A_gen', 'A_mental', 'A_social', 'A_none'];
const B_P = ['B_sex', 'B_mental', 'B_none'];
const OBSERVATIONS: ObsSpec[] = [
  { key: 'A_gen', source: 'A', patient: 'p', label: 'GENERAL_HEALTH' },
  { key: 'A_mental', source: 'A', patient: 'p', label: 'MENTAL_HEALTH' },
  { key: 'A_social', source: 'A', patient: 'p', label: 'SOCIAL_CARE' },
  { key: 'A_none', source: 'A', patient: 'p' },
  { key: 'A_r', source: 'A', patient: 'r', label: 'GENERAL_HEALTH' },
  { key: 'B_sex', source: 'B', patient: 'p', label: 'SEXUAL_HEALTH' },
  { key: 'B_mental', source: 'B', patient: 'p', label: 'MENTAL_HEALTH' },
  { key: 'B_none', source: 'B', patient: 'p' },
  { key: 'B_q', source: 'B', patient: 'q', label: 'GENERAL_HEALTH' },
  { key: 'G_own', source: 'G', patient: 's', label: 'MENTAL_HEALTH' },
  { key: 'N_own', source: 'N', patient: 't', label: 'MENTAL_HEALTH' },
  { key: 'A_panel_gen', source: 'A', patient: 'p', label: 'GENERAL_HEALTH', members: A_P },
  { key: 'A_panel_mental', source: 'A', patient: 'p', label: 'MENTAL_HEALTH', members: A_P },
  { key: 'A_panel_social', source: 'A', patient: 'p', label: 'SOCIAL_CARE', members: A_P },
  { key: 'B_panel_sex', source: 'B', patient: 'p', label: 'SEXUAL_HEALTH', members: B_P },
  { key: 'A_panel_r', source: 'A', patient: 'r', label: 'GENERAL_HEALTH', members: ['A_r'] },
  { key: 'B_panel_q', source: 'B', patient: 'q', label: 'GENERAL_HEALTH', members: ['B_q'] },
  { key: 'G_panel', source: 'G', patient: 's', label: 'MENTAL_HEALTH', members: ['G_own'] },
  { key: 'N_panel', source: 'N', patient: 't', label: 'MENTAL_HEALTH', members: ['N_own'] },
];
const PATIENTS: Record<CallerKey, { id: string; nhs: string }[]> = {
  A: [
    { id: 'p', nhs: '9000000001' },
    { id: 'r', nhs: '9000000002' },
  ],
  B: [
    { id: 'p', nhs: '9000000001' },
    { id: 'q', nhs: '9000000003' },
  ],
  G: [{ id: 's', nhs: '9000000004' }],
  N: [{ id: 't', nhs: '9000000005' }],
};
const GRANTS: Record<CallerKey, Label> = { A: 'SEXUAL_HEALTH', B: 'GENERAL_HEALTH', G: 'MENTAL_HEALTH', N: 'SOCIAL_CARE' };
/** What P granted the practitioner N's client D acts as. */
const PRACTITIONER_GRANT: Label = 'GENERAL_HEALTH';

/** Whose Group each caller exports at Group level: its customer's (P's token is minted from A's client). */
const GROUP_OF: Record<Viewer, CallerKey> = { A: 'A', B: 'B', G: 'G', N: 'N', P: 'A', X: 'G', D: 'N' };

/** DESIGN §4 as the expectation: own source, a granted label on P, or (unlabelled) all four labels; P sees all of P; break-the-glass opens P. */
function visible(caller: Viewer, o: ObsSpec): boolean {
  if (caller === 'P') return o.patient === 'p';
  if (caller === 'X') return o.source === 'G' || o.patient === 'p';
  if (caller === 'D') return o.source === 'N' || (o.patient === 'p' && o.label === PRACTITIONER_GRANT);
  if (o.source === caller) return true;
  if (o.patient !== 'p') return false;
  return o.label !== undefined && GRANTS[caller] === o.label;
}

const CALLERS: { key: Viewer; name: string; data: Record<string, string> }[] = [
  {
    key: 'A',
    name: 'owner of the data',
    data: { 'own source': 'A_mental', 'other source': 'B_q', 'labelled granted': 'B_sex', 'labelled not granted': 'B_mental', unlabelled: 'B_none' },
  },
  {
    key: 'B',
    name: 'other customer',
    data: { 'own source': 'B_mental', 'other source': 'A_r', 'labelled granted': 'A_gen', 'labelled not granted': 'A_mental', unlabelled: 'A_none' },
  },
  {
    key: 'G',
    name: 'grantee with the label',
    data: { 'own source': 'G_own', 'other source': 'B_q', 'labelled granted': 'A_mental', 'labelled not granted': 'A_gen', unlabelled: 'A_none' },
  },
  {
    key: 'N',
    name: 'grantee without the label',
    data: { 'own source': 'N_own', 'other source': 'B_q', 'labelled granted': 'A_social', 'labelled not granted': 'A_mental', unlabelled: 'A_none' },
  },
  {
    key: 'P',
    name: 'the patient (self)',
    data: { 'own record': 'B_mental', 'own record unlabelled': 'A_none', 'other patient': 'B_q', "other patient of the token's customer": 'A_r' },
  },
  { key: 'X', name: 'break-the-glass on P', data: { 'own source': 'G_own', 'labelled not granted': 'A_gen', unlabelled: 'B_none', 'other patient': 'B_q' } },
  {
    key: 'D',
    name: 'practitioner granted a label',
    data: { 'own source': 'N_own', 'labelled granted': 'A_gen', 'labelled not granted': 'A_mental', unlabelled: 'A_none', 'other patient': 'B_q' },
  },
];

/** What a probe is about: the resource's aggregated id and its unique search values (or a ghost's). */
interface Target {
  id: string;
  code: string;
  valueString: string;
  date: string;
  quantity: string;
  profile: string;
  /** Aggregated id of its Patient. */
  patientId: string;
  /** A panel the caller can see that has H as a member, if any. */
  anchorId?: string;
}
interface Answer {
  /** What was asked (path, query or body): only values that occur here are the probe's own. */
  request: string;
  status: number;
  body: Json;
}
interface Door {
  name: string;
  probe(caller: Tenant, t: Target): Ask;
  /** Whether H shows in the answer; default: H's id among the answer's resources. */
  appears?(answer: Answer, t: Target): boolean;
  /** A door that goes through a visible panel needs one to exist for the cell to say anything. */
  needsAnchor?: boolean;
  /** Whether the caller sees the resource through this door, when it is narrower than `visible`. */
  shows?(caller: Viewer, o: ObsSpec): boolean;
}

let server: TestServer;
const tenants = {} as Record<Viewer, Tenant>;
const targets = new Map<string, Target>();
/** Aggregated id of each customer's Group of its Patients. */
const groupIds = {} as Record<CallerKey, string>;
const viewerOf = (c: Tenant) => (Object.keys(tenants) as Viewer[]).find((k) => tenants[k] === c) as Viewer;
let practitionerId = '';
let ghostSeq = 0;

/** A request ready to send; `request` is what it asks (path, query or body). */
interface Ask {
  request: string;
  send(): Promise<Answer>;
}
const rest = (caller: Tenant, path: string, init?: RequestInit): Ask => {
  const request = `${path} ${init?.body ?? ''}`;
  return { request, send: () => answer(request, server.aggregated(caller, path, init)) };
};
const graphql = (caller: Tenant, query: string): Ask => ({
  request: query,
  send: () =>
    answer(
      query,
      fetch(`${server.url}/graphql`, { method: 'POST', headers: { authorization: `Bearer ${caller.token}`, 'content-type': 'application/json' }, body: JSON.stringify({ query }) }),
    ),
});
async function answer(request: string, pending: Promise<Response>): Promise<Answer> {
  const res = await pending;
  const text = await res.text();
  let body: Json;
  try {
    body = JSON.parse(text) as Json;
  } catch {
    body = { text };
  }
  return { request, status: res.status, body };
}
const q = (v: string) => encodeURIComponent(v);

/** A path on the aggregated endpoint from one of its absolute URLs (the test server's base names another port). */
const aggregatedPath = (url: string) => url.slice(url.indexOf('/fhir/aggregated/') + '/fhir/aggregated/'.length);

/**
 * A Bulk Data export (kick-off, polling, every file) as one answer: its resources as a Bundle's entries,
 * so the matrix compares it like a search. With `parameters`, a POST kick-off with that Parameters body.
 */
const bulkExport = (caller: Tenant, path: string, parameters?: Json[]): Ask => {
  const body = parameters ? JSON.stringify({ resourceType: 'Parameters', parameter: parameters }) : undefined;
  const request = body ? `${path} ${body}` : path;
  return {
    request,
    send: async () => {
      const kick = await server.aggregated(caller, path, { headers: { prefer: 'respond-async' }, ...(body ? { method: 'POST', body } : {}) });
      if (kick.status !== 202) return answer(request, Promise.resolve(kick));
      const statusPath = aggregatedPath(kick.headers.get('content-location') as string);
      for (let i = 0; i < 600; i++) {
        const status = await server.aggregated(caller, statusPath);
        if (status.status === 200) {
          const manifest = (await status.json()) as Json;
          const entry: Json[] = [];
          for (const o of manifest.output) {
            const text = await (await server.aggregated(caller, aggregatedPath(o.url))).text();
            for (const line of text.split('\n').filter((l) => l !== '')) entry.push({ resource: JSON.parse(line) });
          }
          return { request, status: 200, body: { resourceType: 'Bundle', entry } };
        }
        if (status.status !== 202) return answer(request, Promise.resolve(status));
        await new Promise((r) => setTimeout(r, 20));
      }
      throw new Error(`${path}: the export did not finish`);
    },
  };
};
/** The Parameters of a POST kick-off of H's Observations: `_type`, `_typeFilter` on H's code, and `patient` when given. */
const exportParameters = (t: Target, patient?: string): Json[] => [
  { name: '_type', valueString: 'Observation' },
  { name: '_typeFilter', valueString: `Observation?code=${t.code}` },
  ...(patient ? [{ name: 'patient', valueReference: { reference: `Patient/${patient}` } }] : []),
];

/** Resource ids an answer shows: a resource, a Bundle's entries, or every `id` in GraphQL data. */
function shownIds(body: Json): string[] {
  if (body.resourceType === 'Bundle') return (body.entry ?? []).map((e: Json) => e.resource?.id).filter(Boolean);
  if (body.resourceType && body.resourceType !== 'OperationOutcome') return [body.id];
  const ids: string[] = [];
  const walk = (v: unknown) => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object')
      for (const [k, x] of Object.entries(v)) {
        if (k === 'id' && typeof x === 'string') ids.push(x);
        else walk(x);
      }
  };
  walk(body.data);
  return ids;
}
const matched = (a: Answer) => (a.body.total ?? 0) > 0 || shownIds(a.body).length > 0;

const DOORS: Door[] = [
  { name: 'read', probe: (c, t) => rest(c, `Observation/${t.id}`) },
  { name: 'vread', probe: (c, t) => rest(c, `Observation/${t.id}/_history/1`) },
  { name: 'search token', probe: (c, t) => rest(c, `Observation?code=${q(t.code)}`) },
  { name: 'search string', probe: (c, t) => rest(c, `Observation?value-string:exact=${q(t.valueString)}`) },
  { name: 'search date', probe: (c, t) => rest(c, `Observation?date=${t.date}`) },
  { name: 'search quantity', probe: (c, t) => rest(c, `Observation?component-value-quantity=${t.quantity}`) },
  { name: 'search uri', probe: (c, t) => rest(c, `Observation?_profile=${q(t.profile)}`) },
  { name: 'search reference', probe: (c, t) => rest(c, `Observation?subject=Patient/${t.patientId}&code=${q(t.code)}`) },
  { name: 'search composite', probe: (c, t) => rest(c, `Observation?code-value-string=${q(`${t.code}$${t.valueString}`)}`) },
  { name: 'search _id', probe: (c, t) => rest(c, `Observation?_id=${t.id}`) },
  { name: 'chain', probe: (c, t) => rest(c, `Observation?code=${q(t.code)}&subject:Patient.general-practitioner:Practitioner.identifier=${q(`${GP}|GP-1`)}`) },
  {
    name: 'chain through it',
    probe: (c, t) => rest(c, `Observation?has-member:Observation.code=${q(t.code)}`),
    appears: (a, t) => shownIds(a.body).includes(t.anchorId as string),
    needsAnchor: true,
  },
  { name: '_has', probe: (c, t) => rest(c, `Patient?_has:Observation:subject:code=${q(t.code)}&_summary=count`), appears: matched },
  {
    name: '_has two deep',
    probe: (c, t) => rest(c, `Practitioner?_has:Patient:general-practitioner:_has:Observation:subject:code=${q(t.code)}&_total=accurate`),
    appears: matched,
  },
  { name: '_has by _id', probe: (c, t) => rest(c, `Patient?_has:Observation:subject:_id=${t.id}&_total=accurate`), appears: matched },
  { name: '_include:iterate', probe: (c, t) => rest(c, `Observation?_id=${t.anchorId}&_include=Observation:has-member&_include:iterate=Observation:subject`), needsAnchor: true },
  {
    name: '_revinclude:iterate',
    probe: (c) => rest(c, `Practitioner?_id=${practitionerId}&_revinclude=Patient:general-practitioner&_revinclude:iterate=Observation:subject`),
  },
  {
    name: '_revinclude then _include:iterate',
    probe: (c, t) => rest(c, `Patient?_id=${t.patientId}&_revinclude=Observation:subject&_include:iterate=Observation:has-member`),
  },
  { name: '_total=accurate', probe: (c, t) => rest(c, `Observation?code=${q(t.code)}&_total=accurate`) },
  { name: '_summary=count', probe: (c, t) => rest(c, `Observation?code=${q(t.code)}&_summary=count`), appears: matched },
  { name: 'history instance', probe: (c, t) => rest(c, `Observation/${t.id}/_history`) },
  { name: 'history type', probe: (c) => rest(c, 'Observation/_history?_count=1000') },
  { name: 'history system', probe: (c) => rest(c, '_history?_count=1000') },
  {
    name: 'POST _search',
    probe: (c, t) =>
      rest(c, 'Observation/_search', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `code=${q(t.code)}&_total=accurate` }),
  },
  {
    name: 'POST _search with _has',
    probe: (c, t) =>
      rest(c, 'Patient/_search', {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: `_has:Observation:subject:code=${q(t.code)}&_total=accurate`,
      }),
    appears: matched,
  },
  { name: 'GraphQL read', probe: (c, t) => graphql(c, `{ Observation(id: "${t.id}") { id } }`) },
  { name: 'GraphQL list', probe: (c, t) => graphql(c, `{ ObservationList(code: "${t.code}") { id } }`) },
  {
    name: 'GraphQL connection count',
    probe: (c, t) => graphql(c, `{ ObservationConnection(code: "${t.code}") { count edges { resource { id } } } }`),
    appears: (a) => a.body.data?.ObservationConnection?.count > 0,
  },
  {
    name: 'GraphQL Reference.resource',
    probe: (c, t) => graphql(c, `{ Observation(id: "${t.anchorId}") { hasMember { resource(optional: true) { ... on Observation { id } } } } }`),
    needsAnchor: true,
  },
  {
    // List arguments on the repeating element: the references are then read one by one, not prefetched.
    name: 'GraphQL Reference.resource(type:) under list arguments',
    probe: (c, t) =>
      graphql(c, `{ Observation(id: "${t.anchorId}") { hasMember(fhirpath: "reference.exists()", _count: 100) { resource(type: Observation, optional: true) { id } } } }`),
    needsAnchor: true,
  },
  { name: 'GraphQL reverse reference', probe: (c, t) => graphql(c, `{ Patient(id: "${t.patientId}") { ObservationList(_reference: subject) { id } } }`) },
  {
    name: '$graphql system',
    probe: (c, t) =>
      rest(c, '$graphql', { method: 'POST', body: JSON.stringify({ query: `{ ObservationList(code: "${t.code}") { id } ObservationConnection(code: "${t.code}") { count } }` }) }),
  },
  { name: 'Patient/$everything', probe: (c, t) => rest(c, `Patient/${t.patientId}/$everything?_type=Observation&_count=1000`) },
  { name: '$export', probe: (c, t) => bulkExport(c, `$export?_type=Observation&_typeFilter=${q(`Observation?code=${t.code}`)}`) },
  { name: 'Patient/$export', probe: (c, t) => bulkExport(c, `Patient/$export?_type=Observation&_typeFilter=${q(`Observation?code=${t.code}`)}`) },
  {
    // The caller's customer's Group: its members' compartments, each row as the caller may see it. A patient-scoped
    // token sees no Group (a Group belongs to no patient), so its export is the 404 of an unknown Group.
    name: 'Group/[id]/$export',
    probe: (c, t) => bulkExport(c, `Group/${groupIds[GROUP_OF[viewerOf(c)]]}/$export?_type=Observation&_typeFilter=${q(`Observation?code=${t.code}`)}`),
    shows: (caller, o) => caller !== 'P' && visible(caller, o) && PATIENTS[GROUP_OF[caller]].some((p) => p.id === o.patient),
  },
  { name: 'POST $export', probe: (c, t) => bulkExport(c, '$export', exportParameters(t)) },
  // `patient` names H's Patient: the caller sees H's data through it when it may see H (and so H's Patient).
  { name: 'POST Patient/$export with patient', probe: (c, t) => bulkExport(c, 'Patient/$export', exportParameters(t, t.patientId)) },
  {
    // Only members of the caller's customer's Group may be named: H's Patient when it is one of them.
    name: 'POST Group/[id]/$export with patient',
    probe: (c, t) => bulkExport(c, `Group/${groupIds[GROUP_OF[viewerOf(c)]]}/$export`, exportParameters(t, t.patientId)),
    shows: (caller, o) => caller !== 'P' && visible(caller, o) && PATIENTS[GROUP_OF[caller]].some((p) => p.id === o.patient),
  },
  { name: '$graphql instance', probe: (c, t) => rest(c, `Observation/${t.id}/$graphql?query=${q('{ id code { text } }')}`) },
  // Last: its probes write a sentinel of the caller's own (below), after every other door has run.
  { name: 'GraphQL subscription (replayed from the start)', probe: (c, t) => live(c, t) },
];

let sentinelSeq = 0;
/**
 * A subscription to Observations with H's code, replayed from the start of the change log. Whether H is
 * delivered is known once a sentinel is: an Observation the caller can see, written after the subscription
 * started and matched by the same criteria, so it comes after anything H's changes could have produced.
 * A customer's caller writes its own on its endpoint. A patient-scoped token writes nothing: its sentinel is
 * written by the customer that minted it (A), about the patient (P), which P sees as its own.
 */
function live(caller: Tenant, t: Target): Ask {
  const sentinel = `SENTINEL-${++sentinelSeq}`;
  const forPatient = caller === tenants.P;
  const writer = forPatient ? tenants.A : caller;
  const query = `subscription { resourceChanged(type: "Observation", criteria: "code=${t.code},${CODE}|${sentinel}", since: "0") { type id change resource { ... on Observation { code { coding { code } } } } } }`;
  return {
    request: query,
    send: async () => {
      const sub = subscribe(server.url, caller.token, query);
      try {
        const res = await writer.fetch(`Observation/${sentinel.toLowerCase()}`, {
          method: 'PUT',
          body: JSON.stringify({
            resourceType: 'Observation',
            id: sentinel.toLowerCase(),
            status: 'final',
            code: { coding: [{ system: CODE, code: sentinel }] },
            ...(forPatient ? { subject: { reference: 'Patient/p' } } : {}),
          }),
        });
        if (res.status >= 300) throw new Error(`sentinel: ${res.status} ${await res.text()}`);
        const isSentinel = (e: Json) => e.resource?.code?.coding?.[0]?.code === sentinel;
        await sub.waitFor(isSentinel);
        const events = sub.events.filter((e) => !isSentinel(e)).map((e) => ({ type: e.type, id: e.id, change: e.change }));
        return { request: query, status: sub.error ? 400 : 200, body: { data: { events }, errors: sub.error } };
      } finally {
        await sub.close();
      }
    },
  };
}

/**
 * The answer with the probe's own values (H's or the ghost's, those the request used) replaced by
 * placeholders, and per-response noise dropped. Values the request did not use stay: a visible panel's
 * hasMember names H's id whether or not H can be seen, and that is the panel's content, not a leak.
 */
function normalise(a: Answer, t: Target): Omit<Answer, 'request'> {
  const values: [string, string][] = [
    [t.id, '<id>'],
    [t.code, '<code>'],
    [t.valueString, '<string>'],
    [t.date, '<date>'],
    [t.quantity, '<quantity>'],
    [t.profile, '<profile>'],
  ];
  const request = decodeURIComponent(a.request.replace(/\+/g, ' '));
  let text = JSON.stringify(a.body, (k, v) => (k === 'lastUpdated' || k === 'timestamp' ? undefined : v));
  for (const [value, placeholder] of values.filter(([v]) => request.includes(v)).sort((x, y) => y[0].length - x[0].length)) {
    const forms = new Set([value, encodeURIComponent(value), new URLSearchParams({ v: value }).toString().slice(2), JSON.stringify(value).slice(1, -1)]);
    for (const form of forms) text = text.split(form).join(placeholder);
  }
  const body = JSON.parse(text) as Json;
  // A searchset's own id is new on every response.
  if (body.resourceType === 'Bundle') delete body.id;
  return { status: a.status, body };
}

function ghostOf(t: Target): Target {
  const n = ++ghostSeq;
  // Aggregated ids are UUIDs: a fresh one exists nowhere.
  return {
    ...t,
    id: randomUUID(),
    code: `${CODE}|GHOST-${n}`,
    valueString: `ghost-${n}`,
    date: `1999-12-${String((n % 28) + 1).padStart(2, '0')}`,
    quantity: `${90000 + n}.5`,
    profile: `https://example.org/profile/ghost-${n}`,
  };
}

beforeAll(async () => {
  // Tokens live an hour here: the matrix's callers are minted once, and on a loaded machine its thousand cells
  // take longer than the default five minutes (a cell then saw 401, not the access answer it asks about).
  server = await startTestServer({ TOKEN_TTL_SECONDS: '3600', AGGREGATED_TYPES: '+Group' });
  const writes = new Map<CallerKey, Json[]>();
  for (const key of ['A', 'B', 'G', 'N'] as CallerKey[]) {
    tenants[key] = await server.provision({ name: `Customer ${key}`, defaultSourceOrg: 'Organization/org' });
    writes.set(key, [
      { resourceType: 'Organization', id: 'org', identifier: [{ system: 'https://fhir.nhs.uk/Id/ods-organization-code', value: `ORG-${key}` }], name: `Org ${key}` },
      { resourceType: 'Practitioner', id: 'dr', identifier: [{ system: GP, value: 'GP-1' }], name: [{ family: 'Shared' }] },
      ...PATIENTS[key].map((p) => ({ resourceType: 'Patient', id: p.id, identifier: [{ system: NHS, value: p.nhs }], generalPractitioner: [{ reference: 'Practitioner/dr' }] })),
      { resourceType: 'Group', id: 'everyone', type: 'person', actual: true, member: PATIENTS[key].map((p) => ({ entity: { reference: `Patient/${p.id}` } })) },
    ]);
  }
  for (const [i, o] of OBSERVATIONS.entries()) {
    writes.get(o.source)?.push({
      resourceType: 'Observation',
      id: o.key.replace(/_/g, '-'),
      meta: { profile: [`https://example.org/profile/${o.key}`], ...(o.label ? { security: [{ system: LABEL, code: o.label }] } : {}) },
      status: 'final',
      code: { coding: [{ system: CODE, code: `SECRET-${o.key}` }], text: o.key },
      subject: { reference: `Patient/${o.patient}` },
      effectiveDateTime: `2001-01-${String(i + 1).padStart(2, '0')}`,
      valueString: `secret-${o.key}`,
      component: [{ code: { coding: [{ system: CODE, code: 'dose' }] }, valueQuantity: { value: 7000 + i + 0.5, unit: 'mg', system: 'http://unitsofmeasure.org', code: 'mg' } }],
      ...(o.members ? { hasMember: o.members.map((m) => ({ reference: `Observation/${m.replace(/_/g, '-')}` })) } : {}),
    });
  }
  // One transaction per customer.
  for (const [key, resources] of writes) {
    const bundle = { resourceType: 'Bundle', type: 'transaction', entry: resources.map((r) => ({ resource: r, request: { method: 'PUT', url: `${r.resourceType}/${r.id}` } })) };
    const res = await tenants[key].fetch(tenants[key].baseUrl, { method: 'POST', body: JSON.stringify(bundle) });
    if (res.status !== 200) throw new Error(`${key}: ${res.status} ${await res.text()}`);
  }
  await server.waitForAggregation();

  const patientIds = new Map<string, string>();
  for (const key of ['A', 'B', 'G', 'N'] as CallerKey[]) {
    for (const p of PATIENTS[key]) patientIds.set(p.id, await aggregatedId(tenants[key], 'Patient', p.id));
  }
  practitionerId = await aggregatedId(tenants.A, 'Practitioner', 'dr');
  for (const key of ['A', 'B', 'G', 'N'] as CallerKey[]) groupIds[key] = await aggregatedId(tenants[key], 'Group', 'everyone');
  for (const key of ['A', 'B', 'G', 'N'] as CallerKey[]) {
    // Each customer's client acts as its team; P grants the team the label.
    tenants[key] = actingAs(server, tenants[key], { teamId: `team-${key.toLowerCase()}` });
    await server.admin('POST', '/admin/consents', { patientId: patientIds.get('p'), grantee: `CareTeam/team-${key.toLowerCase()}`, label: GRANTS[key] });
  }
  tenants.D = actingAs(server, tenants.N, { practitionerId: 'prac-d' });
  await server.admin('POST', '/admin/consents', { patientId: patientIds.get('p'), grantee: 'Practitioner/prac-d', label: PRACTITIONER_GRANT });
  // P's own token is minted from A's client: a patient-scoped token gets no source view of its customer.
  tenants.P = actingAs(server, tenants.A, { patientId: patientIds.get('p') });
  tenants.X = actingAs(server, tenants.G, {
    teamId: 'team-g',
    breakGlass: { patientId: patientIds.get('p') as string, reason: 'leak matrix', until: Math.floor(Date.now() / 1000) + 3600 },
  });
  for (const [i, o] of OBSERVATIONS.entries()) {
    targets.set(o.key, {
      id: await aggregatedId(tenants[o.source], 'Observation', o.key.replace(/_/g, '-')),
      code: `${CODE}|SECRET-${o.key}`,
      valueString: `secret-${o.key}`,
      date: `2001-01-${String(i + 1).padStart(2, '0')}`,
      quantity: `${7000 + i}.5`,
      profile: `https://example.org/profile/${o.key}`,
      patientId: patientIds.get(o.patient) as string,
    });
  }
  // Five minutes: on a loaded machine (a load average of 30 on two cores) building the world took over two.
}, 300_000);
afterAll(() => server?.close());

const spec = (key: string) => OBSERVATIONS.find((o) => o.key === key) as ObsSpec;
/** A panel visible to the caller that has the resource as a member. */
const anchorFor = (caller: Viewer, key: string) => OBSERVATIONS.find((o) => o.members?.includes(key) && visible(caller, o))?.key;

const cells = DOORS.flatMap((door) =>
  CALLERS.flatMap((caller) =>
    Object.entries(caller.data)
      .filter(([, key]) => !door.needsAnchor || anchorFor(caller.key, key))
      .map(([data, key]) => {
        const shown = door.shows ? door.shows(caller.key, spec(key)) : visible(caller.key, spec(key));
        return { name: `${door.name} × ${caller.name} × ${data}: ${shown ? 'visible' : 'hidden'}`, door, caller: caller.key, key, shown };
      }),
  ),
);

test('the world is as the matrix assumes: each caller sees exactly its expected Observations', async () => {
  for (const caller of CALLERS) {
    const bundle = (await (await server.aggregated(tenants[caller.key], 'Observation?_count=1000&_elements=id')).json()) as Json;
    const ids = new Set(shownIds(bundle));
    const expected = OBSERVATIONS.filter((o) => visible(caller.key, o)).map((o) => targets.get(o.key)?.id);
    expect({ caller: caller.name, ids: [...ids].sort() }).toEqual({ caller: caller.name, ids: expected.sort() });
  }
});

test.each(cells)('$name', async ({ door, caller, key, shown }) => {
  const anchorKey = anchorFor(caller, key);
  const h: Target = { ...(targets.get(key) as Target), anchorId: anchorKey ? targets.get(anchorKey)?.id : 'no-anchor' };
  const tenant = tenants[caller];
  const real = await door.probe(tenant, h).send();
  const appears = door.appears ? door.appears(real, h) : shownIds(real.body).includes(h.id);
  if (shown) {
    expect(appears).toBe(true);
    return;
  }
  // First the whole answer against a ghost's (its diff shows what differs: a total, an entry, a message).
  // A request that names nothing of H's (history, _revinclude from the Practitioner…) is the ghost's too.
  const ghost = ghostOf(h);
  const ask = door.probe(tenant, ghost);
  if (ask.request !== real.request) expect(normalise(real, h)).toEqual(normalise(await ask.send(), ghost));
  expect(shownIds(real.body)).not.toContain(h.id);
  expect(appears).toBe(false);
});

/**
 * The facade (issue 14): a legacy caller reads the native record of its own organisation and nothing else.
 * Each caller's organisation writes one native measurement through GraphQL; the cells probe the facade with
 * A's legacy token for A's own native measurement (visible), B's (another customer's native record) and
 * A's own customer-endpoint Observation (never facade data), each hidden answer compared with a ghost's.
 */
describe('facade', () => {
  const LOINC = 'http://loinc.org';
  const legacy = {} as Record<'A' | 'B', { token: string; publicId: string }>;
  const native = {} as Record<'A' | 'B', { id: string; code: string; patientId: string }>;

  beforeAll(async () => {
    for (const key of ['A', 'B'] as const) {
      const tenant = tenants[key];
      const customer = (await server.admin<Json>('GET', '/admin/customers')).customers.find((c: Json) => c.id === tenant.customerId);
      const organization = await server.admin<Json>('GET', `/admin/organizations/${customer.defaultOrganizationId}`);
      const client = await server.admin<Json>('POST', '/admin/clients', { customerId: tenant.customerId, family: 'legacy' });
      legacy[key] = { token: await server.token(client.client_id, client.client_secret, 'legacy'), publicId: organization.publicId };
      // The web UI writing the native record: a fhir client of the customer, acting for its default organisation
      // (the matrix's own tokens act as a team and name no organisation).
      const writer = await server.admin<Json>('POST', '/admin/clients', { customerId: tenant.customerId, family: 'fhir' });
      const writerToken = await server.token(writer.client_id, writer.client_secret, 'fhir');
      const call = async (query: string, variables: Json) =>
        (await (
          await fetch(`${server.url}/graphql`, {
            method: 'POST',
            headers: { authorization: `Bearer ${writerToken}`, 'content-type': 'application/json' },
            body: JSON.stringify({ query, variables }),
          })
        ).json()) as Json;
      // Valid NHS numbers (modulus 11), as the native record requires.
      const patient = await call('mutation P($n: String!) { nativeSavePatient(input: { nhsNumber: $n, family: "Native", given: ["N"] }) { id } }', {
        n: key === 'A' ? '9449305552' : '9434765919',
      });
      const patientId = patient.data.nativeSavePatient.id;
      const code = `NATIVE-${key}`;
      const entry = await call(
        'mutation E($p: ID!, $c: String!) { nativeAddTimelineEntry(input: { patientId: $p, kind: "measurement", occurredAt: "2002-02-02", codeSystem: "LOINC", code: $c, value: "1.5" }) { id } }',
        { p: patientId, c: code },
      );
      native[key] = { id: entry.data.nativeAddTimelineEntry.id, code: `${LOINC}|${code}`, patientId };
    }
  }, 120_000);

  const facade = (path: string, init: RequestInit = {}): Ask => {
    const request = `${path} ${init.body ?? ''}`;
    return {
      request,
      send: () =>
        answer(
          request,
          fetch(`${server.url}/fhir/facade/${path}`, {
            ...init,
            headers: { authorization: `Bearer ${legacy.A.token}`, 'x-org-public-id': legacy.A.publicId, ...(init.headers as Record<string, string>) },
          }),
        ),
    };
  };
  type Probe = { id: string; code: string; patientId: string };
  const FACADE_DOORS: { name: string; probe(t: Probe): Ask }[] = [
    { name: 'read', probe: (t) => facade(`Observation/${t.id}`) },
    { name: 'search token', probe: (t) => facade(`Observation?code=${q(t.code)}`) },
    { name: 'search _id', probe: (t) => facade(`Observation?_id=${t.id}`) },
    { name: 'search reference', probe: (t) => facade(`Observation?subject=Patient/${t.patientId}`) },
    { name: 'search _total=accurate', probe: (t) => facade(`Observation?code=${q(t.code)}&_total=accurate`) },
    { name: '_revinclude', probe: (t) => facade(`Patient?_id=${t.patientId}&_revinclude=Observation:subject`) },
    {
      name: 'POST _search',
      probe: (t) => facade('Observation/_search', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `code=${q(t.code)}&_total=accurate` }),
    },
  ];
  const DATA: { name: string; shown: boolean; target(): Probe }[] = [
    { name: 'own native record', shown: true, target: () => native.A },
    { name: "other customer's native record", shown: false, target: () => native.B },
    // Customer-endpoint data is never on the facade, even the caller's own.
    { name: 'own customer endpoint', shown: false, target: () => ({ id: 'A-gen', code: `${CODE}|SECRET-A_gen`, patientId: 'p' }) },
  ];
  const facadeCells = FACADE_DOORS.flatMap((door) => DATA.map((data) => ({ name: `facade ${door.name} × ${data.name}: ${data.shown ? 'visible' : 'hidden'}`, door, data })));

  test.each(facadeCells)('$name', async ({ door, data }) => {
    const h = data.target();
    const real = await door.probe(h).send();
    const appears = shownIds(real.body).includes(h.id);
    if (data.shown) {
      expect(appears).toBe(true);
      return;
    }
    const n = ++ghostSeq;
    const ghost: Probe = { id: `ghost-${n}`, code: `${LOINC}|GHOST-${n}`, patientId: `ghost-patient-${n}` };
    const placeholders = (a: Answer, t: Probe) => normalise(a, { ...t, valueString: '\u0000', date: '\u0000', quantity: '\u0000', profile: '\u0000' } as Target);
    const ghostAnswer = await door.probe(ghost).send();
    const normal = (a: Answer, t: Probe) => {
      const out = placeholders(a, t);
      // Where the request's patient id is echoed (links): as a whole value (the customer endpoint's Patient id is one letter).
      const own = new RegExp(`(=|%2F|/)${t.patientId.replace(/[^A-Za-z0-9]/g, (c) => `\\${c}`)}(?=[&"])`, 'g');
      return JSON.parse(JSON.stringify(out).replace(own, '$1<patient>')) as Json;
    };
    expect(normal(real, h)).toEqual(normal(ghostAnswer, ghost));
    expect(appears).toBe(false);
  });
});

// Issue 15 item 7: an endpoint's aggregation report is its owner's. To anyone else the endpoint does not exist.
test.each([
  ['B', 'A'],
  ['G', 'N'],
] as [CallerKey, CallerKey][])("the aggregation report of another customer's endpoint: %s asking for %s's gets what a missing endpoint gets", async (asker, owner) => {
  const caller = tenants[asker];
  const theirs = tenants[owner].endpointId;
  const ask = (endpoint: string) => answer('', caller.fetch(`${server.url}/fhir/customer/${endpoint}/$aggregation-report`));
  const [real, ghost] = [await ask(theirs), await ask('ep-ghost-endpoint')];
  expect(real.status).toBe(404);
  expect(JSON.stringify(real.body).replaceAll(theirs, 'EP')).toBe(JSON.stringify(ghost.body).replaceAll('ep-ghost-endpoint', 'EP'));
  const query = (endpoint: string) =>
    `{ aggregationReport(endpoint: "${endpoint}") { totals { included excluded } exclusions { targets { type count } } rootCauses { summary examples } } }`;
  const [gqlReal, gqlGhost] = [await graphql(caller, query(theirs)).send(), await graphql(caller, query('ep-ghost-endpoint')).send()];
  expect(gqlReal.body.data).toBeNull();
  expect(JSON.stringify(gqlReal.body).replaceAll(theirs, 'EP')).toBe(JSON.stringify(gqlGhost.body).replaceAll('ep-ghost-endpoint', 'EP'));
  // Its owner gets it.
  expect((await tenants[owner].fetch('$aggregation-report')).status).toBe(200);
});

test("another client's export status and file URLs answer exactly as a job that does not exist (404)", async () => {
  const kick = await server.aggregated(tenants.A, '$export?_type=Observation', { headers: { prefer: 'respond-async' } });
  const statusPath = aggregatedPath(kick.headers.get('content-location') as string);
  let manifest: Json | undefined;
  for (let i = 0; i < 600 && !manifest; i++) {
    const status = await server.aggregated(tenants.A, statusPath);
    if (status.status === 200) manifest = (await status.json()) as Json;
    else await new Promise((r) => setTimeout(r, 20));
  }
  const jobId = statusPath.split('/').pop() as string;
  const filePath = aggregatedPath((manifest as Json).output[0].url);
  const ghostId = randomUUID();
  for (const key of ['B', 'G', 'N'] as CallerKey[]) {
    for (const [path, ghostPath] of [
      [statusPath, statusPath.replace(jobId, ghostId)],
      [filePath, filePath.replace(jobId, ghostId)],
    ]) {
      const real = await answer(path, server.aggregated(tenants[key], path));
      const ghost = await answer(ghostPath, server.aggregated(tenants[key], ghostPath));
      expect(real.status).toBe(404);
      expect(JSON.stringify(real.body).split(jobId).join('<job>')).toBe(JSON.stringify(ghost.body).split(ghostId).join('<job>'));
    }
  }
  expect((await server.aggregated(tenants.A, filePath)).status).toBe(200);
});

/** Which Patients each caller may see: its customer's own, and P for every caller P granted or who broke the glass on P. */
const SEES_PATIENT: Record<Viewer, string[]> = { A: ['p', 'r'], B: ['p', 'q'], G: ['p', 's'], N: ['p', 't'], P: ['p'], X: ['p', 's'], D: ['p', 't'] };

// Bulk Data `patient` (POST kick-off): naming a Patient the caller may not see is the 400 of one that exists nowhere.
test.each(CALLERS.map((c) => [c.key, c.name]))(
  'POST Patient/$export by %s (%s): patient naming a Patient it cannot see answers exactly as an unknown one; one it sees is exported',
  async (viewer) => {
    const caller = tenants[viewer as Viewer];
    const seen = SEES_PATIENT[viewer as Viewer];
    const patientIds = new Map(OBSERVATIONS.map((o) => [o.patient, (targets.get(o.key) as Target).patientId]));
    // The world as the rows assume it: a read of each Patient.
    const reads = [];
    for (const [key, id] of patientIds) reads.push([key, (await server.aggregated(caller, `Patient/${id}`)).status]);
    expect(reads.sort()).toEqual([...patientIds.keys()].sort().map((key) => [key, seen.includes(key) ? 200 : 404]));
    const ask = (patient: string) =>
      bulkExport(caller, 'Patient/$export', [
        { name: '_type', valueString: 'Patient' },
        { name: 'patient', valueReference: { reference: `Patient/${patient}` } },
      ]).send();
    for (const [key, id] of patientIds) {
      const real = await ask(id);
      if (seen.includes(key)) {
        expect({ key, shown: shownIds(real.body) }).toEqual({ key, shown: [id] });
        continue;
      }
      const ghost = randomUUID();
      const unknown = await ask(ghost);
      expect({ key, status: real.status }).toEqual({ key, status: 400 });
      expect(JSON.stringify(real.body).split(id).join('<id>')).toBe(JSON.stringify(unknown.body).split(ghost).join('<id>'));
    }
  },
);

/**
 * Patient ids absorbed by a merge (DESIGN §3.8), named where an operation takes a patient: each stands for its
 * survivor, read as the caller reads it. Added last, so the cells above saw the world as built: A's `r-old`
 * (A's own number) and B's `p-old` (B's own number) each become a Patient of their own, then a record carrying
 * both numbers joins each to the older r or P. A caller who sees the survivor gets the survivor's answer; any
 * other gets exactly the answer about a Patient id that exists nowhere.
 */
describe('a Patient id absorbed by a merge', () => {
  const absorbedIds = {} as Record<'p' | 'r', string>;
  const survivorIds = {} as Record<'p' | 'r', string>;

  beforeAll(async () => {
    const merge = async (key: 'p' | 'r', writer: Tenant, system: string, nhs: string) => {
      const old = { resourceType: 'Patient', id: `${key}-old`, identifier: [{ system, value: `${key.toUpperCase()}-OLD` }] };
      await putResource(writer, old);
      await server.waitForAggregation();
      absorbedIds[key] = await aggregatedId(writer, 'Patient', old.id);
      await putResource(writer, { resourceType: 'Patient', id: `${key}-bridge`, identifier: [{ system: NHS, value: nhs }, ...old.identifier] });
      await server.waitForAggregation();
      survivorIds[key] = (targets.get(key === 'p' ? 'A_gen' : 'A_r') as Target).patientId;
      expect(await aggregatedId(writer, 'Patient', old.id)).toBe(survivorIds[key]);
    };
    await merge('p', tenants.B, 'urn:b-mrn', '9000000001');
    await merge('r', tenants.A, 'urn:a-mrn', '9000000002');
  }, 120_000);

  const rows = CALLERS.flatMap((c) => (['p', 'r'] as const).map((key) => ({ viewer: c.key, name: c.name, key, seen: SEES_PATIENT[c.key].includes(key) })));
  test.each(rows)(
    '$name naming the absorbed id of $key: Patient/$export, Group/[id]/$export with patient and $everything (survivor seen: $seen)',
    async ({ viewer, key, seen }) => {
      const caller = tenants[viewer];
      const absorbed = absorbedIds[key];
      const own = OBSERVATIONS.filter((o) => o.patient === key && visible(viewer, o)).map((o) => (targets.get(o.key) as Target).id);
      // The world's Observations only (the subscription cells' sentinels are about P too).
      const world = new Set([...targets.values()].map((t) => t.id));
      const observations = (a: Answer) => shownIds(a.body).filter((id) => world.has(id));
      const group = `Group/${groupIds[GROUP_OF[viewer]]}/$export`;
      const inGroup = viewer !== 'P' && PATIENTS[GROUP_OF[viewer]].some((p) => p.id === key);
      const asks: [string, (id: string) => Ask, boolean][] = [
        [
          'Patient/$export',
          (id) =>
            bulkExport(caller, 'Patient/$export', [
              { name: '_type', valueString: 'Observation' },
              { name: 'patient', valueReference: { reference: `Patient/${id}` } },
            ]),
          seen,
        ],
        [
          group,
          (id) =>
            bulkExport(caller, group, [
              { name: '_type', valueString: 'Observation' },
              { name: 'patient', valueReference: { reference: `Patient/${id}` } },
            ]),
          seen && inGroup,
        ],
        ['$everything', (id) => rest(caller, `Patient/${id}/$everything?_type=Observation&_count=1000`), seen],
      ];
      for (const [door, ask, shows] of asks) {
        const real = await ask(absorbed).send();
        if (shows) {
          expect({ door, status: real.status, ids: observations(real).sort() }).toEqual({ door, status: 200, ids: [...own].sort() });
          continue;
        }
        const ghost = randomUUID();
        const unknown = await ask(ghost).send();
        expect({ door, status: real.status, body: JSON.stringify(real.body).split(absorbed).join('<id>') }).toEqual({
          door,
          status: unknown.status,
          body: JSON.stringify(unknown.body).split(ghost).join('<id>'),
        });
        expect(real.status).toBeGreaterThanOrEqual(400);
      }
    },
  );
});
