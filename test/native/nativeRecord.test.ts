import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { assertValidResource } from '../../src/fhir/validation';
import { startTestServer, type Tenant, type TestServer } from '../support/testServer';

/**
 * Issue 14 end to end: the native record written by a web UI (GraphQL mutations) and by the demographics
 * `$process-message` reaches the aggregated record merged with the customer's FHIR data and tagged with the
 * writing organisation as its source, and reads back as STU3 on the facade, which never shows
 * customer-endpoint data.
 */
type Json = Record<string, any>;
const NHS = 'https://fhir.nhs.uk/Id/nhs-number';
const SOURCE_ORG = 'http://fhir.patientsknowbest.com/codesystem/source-organization';
const TEAM_ALIAS = 'https://fhir.patientsknowbest.com/structuredefinition/team-alias';
const NHS_NUMBER = '9449305552';

let server: TestServer;
let tenant: Tenant;
let organization: Json;
let legacyToken: string;
let nativePatientId: string;

beforeAll(async () => {
  server = await startTestServer();
  tenant = await server.provision();
  const customer = (await server.admin<Json>('GET', '/admin/customers')).customers.find((c: Json) => c.id === tenant.customerId);
  organization = await server.admin<Json>('GET', `/admin/organizations/${customer.defaultOrganizationId}`);
  await server.admin('PATCH', `/admin/teams/${organization.defaultTeamId}`, { alias: 'main' });
  await server.admin('POST', '/admin/teams', { organizationId: organization.id, name: 'Diabetes clinic', alias: 'diabetes' });
  const legacy = await server.admin<Json>('POST', '/admin/clients', { customerId: tenant.customerId, family: 'legacy' });
  legacyToken = await server.token(legacy.client_id, legacy.client_secret, 'legacy');
}, 120_000);
afterAll(async () => server.close());

async function graphql(query: string, variables: Json = {}, token = tenant.token): Promise<Json> {
  const res = await fetch(`${server.url}/graphql`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ query, variables }),
  });
  return (await res.json()) as Json;
}

function legacy(p: string, init: RequestInit = {}, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${server.url}${p}`, {
    ...init,
    headers: { authorization: `Bearer ${legacyToken}`, 'x-org-public-id': organization.publicId, 'content-type': 'application/fhir+json', ...headers },
  });
}

const SAVE_PATIENT = `mutation Save($input: NativePatientInput!) { nativeSavePatient(input: $input) { id nhsNumber family given teamIds } }`;
const ADD_ENTRY = `mutation Add($input: NativeEntryInput!) { nativeAddTimelineEntry(input: $input) { id kind value unit code codeSystem occurredAt } }`;

function stu3Patient(overrides: Json = {}): Json {
  return {
    resourceType: 'Patient',
    identifier: [{ system: NHS, value: NHS_NUMBER }],
    name: [{ family: 'Smith', given: ['Annie'] }],
    birthDate: '1970-01-02',
    gender: 'female',
    telecom: [{ system: 'email', value: 'annie@example.org' }],
    extension: [
      { url: TEAM_ALIAS, valueString: 'main' },
      { url: TEAM_ALIAS, valueString: 'diabetes' },
    ],
    ...overrides,
  };
}

test('a web UI writes a patient and a measurement; both are aggregated, merged with the FHIR Patient of the same NHS number and tagged with their source', async () => {
  // The customer's FHIR feed already knows the patient.
  const fhir = await tenant.fetch('Patient', {
    method: 'POST',
    body: JSON.stringify({ resourceType: 'Patient', identifier: [{ system: NHS, value: NHS_NUMBER }], name: [{ family: 'Smith', given: ['Ann'] }] }),
  });
  expect(fhir.status).toBe(201);

  const saved = await graphql(SAVE_PATIENT, { input: { nhsNumber: NHS_NUMBER, family: 'Smith', given: ['Ann', 'Marie'], birthDate: '1970-01-01', gender: 'female' } });
  expect(saved.errors).toBeUndefined();
  nativePatientId = saved.data.nativeSavePatient.id;
  expect(saved.data.nativeSavePatient).toMatchObject({ nhsNumber: NHS_NUMBER, family: 'Smith', given: ['Ann', 'Marie'] });

  const added = await graphql(ADD_ENTRY, {
    input: {
      patientId: nativePatientId,
      kind: 'measurement',
      occurredAt: '2026-12-01T09:30:00Z',
      codeSystem: 'LOINC',
      code: '4548-4',
      codeDisplay: 'HbA1c',
      value: '7.10',
      unit: '%',
    },
  });
  expect(added.errors).toBeUndefined();
  // The native record keeps the decimal exactly as written.
  expect(added.data.nativeAddTimelineEntry).toMatchObject({ kind: 'measurement', value: '7.10', unit: '%', codeSystem: 'http://loinc.org', code: '4548-4' });
  await server.waitForAggregation();

  const patients = (await (await server.aggregated(tenant, `Patient?identifier=${NHS}|${NHS_NUMBER}`)).json()) as Json;
  expect(patients.entry).toHaveLength(1);
  const merged = patients.entry[0].resource;
  // One merged Patient: the names of both upstreams (DESIGN §3.5, no de-duplication).
  expect(merged.name.map((n: Json) => n.given.join(' ')).sort()).toEqual(['Ann', 'Ann Marie']);
  expect(merged.birthDate).toBe('1970-01-01');

  const observations = (await (await server.aggregated(tenant, `Observation?patient=${merged.id}`)).json()) as Json;
  expect(observations.entry).toHaveLength(1);
  const observation = observations.entry[0].resource;
  expect(observation.valueQuantity).toMatchObject({ value: 7.1, unit: '%' });
  expect(observation.subject.reference).toBe(`Patient/${merged.id}`);
  const source = observation.meta.security.find((c: Json) => c.system === SOURCE_ORG);
  expect(source).toBeDefined();
  // The source is the writing organisation, as an aggregated Organization carrying its public id.
  const sourceOrg = (await (await server.aggregated(tenant, `Organization/${source.code}`)).json()) as Json;
  expect(sourceOrg.identifier).toContainEqual({ system: 'urn:ietf:rfc:3986', value: `urn:uuid:${organization.publicId}` });

  // The same merged record through GraphQL, and the native timeline as the web UI reads it.
  const viaGraphql = await graphql(
    `{ PatientList(identifier: "${NHS}|${NHS_NUMBER}") { id name { given } ObservationList(_reference: patient) { id valueQuantity { value unit } } } }`,
  );
  expect(viaGraphql.errors).toBeUndefined();
  expect(viaGraphql.data.PatientList).toHaveLength(1);
  expect(viaGraphql.data.PatientList[0].ObservationList).toEqual([{ id: observation.id, valueQuantity: { value: 7.1, unit: '%' } }]);
  const timeline = await graphql(
    `
      query T($p: ID!) {
        nativeTimeline(patientId: $p) {
          kind
          value
        }
      }
    `,
    { p: nativePatientId },
  );
  expect(timeline.data.nativeTimeline).toEqual([{ kind: 'measurement', value: '7.10' }]);
});

test('a demographics $process-message updates the native patient of that NHS number; the aggregated Patient follows; a retry changes nothing and invites once', async () => {
  const res = await legacy('/fhir/demographics/Patient/$process-message', { method: 'POST', body: JSON.stringify(stu3Patient()) });
  expect(res.status).toBe(200);
  const answered = (await res.json()) as Json;
  expect(answered).toMatchObject({ resourceType: 'Patient', id: nativePatientId, name: [{ family: 'Smith', given: ['Annie'] }], birthDate: '1970-01-02' });
  expect(() => assertValidResource('STU3', answered, 'Patient')).not.toThrow();

  const retry = await legacy('/fhir/demographics/Patient/$process-message', { method: 'POST', body: JSON.stringify(stu3Patient()) });
  expect(retry.status).toBe(200);
  expect(((await retry.json()) as Json).meta.versionId).toBe(answered.meta.versionId);

  const teams = await graphql(
    `
      query P($id: ID!) {
        nativePatient(id: $id) {
          teamIds
          email
        }
      }
    `,
    { id: nativePatientId },
  );
  expect(teams.data.nativePatient.teamIds).toHaveLength(2);
  expect(teams.data.nativePatient.teamIds).toContain(organization.defaultTeamId);
  expect(teams.data.nativePatient.email).toBe('annie@example.org');
  // One invitation, delivered once, although the message came twice.
  const mail = await readdir(path.join(server.dataDir, 'mail'));
  expect(mail.filter((f) => f.endsWith('.eml'))).toHaveLength(1);

  await server.waitForAggregation();
  const merged = ((await (await server.aggregated(tenant, `Patient?identifier=${NHS}|${NHS_NUMBER}`)).json()) as Json).entry[0].resource;
  expect(merged.name.map((n: Json) => n.given.join(' ')).sort()).toEqual(['Ann', 'Annie']);
  // The native Patient was updated last, so its single-valued elements win.
  expect(merged.birthDate).toBe('1970-01-02');
});

test('a patient the message does not match is created (201) and reads back on the facade', async () => {
  const res = await legacy('/fhir/demographics/Patient/$process-message', {
    method: 'POST',
    body: JSON.stringify(stu3Patient({ identifier: [{ system: NHS, value: '9000000009' }], name: [{ family: 'Jones', given: ['Bob'] }], telecom: undefined })),
  });
  expect(res.status).toBe(201);
  const created = (await res.json()) as Json;
  expect(res.headers.get('location')).toBe(`${server.url}/fhir/facade/Patient/${created.id}`);
  const read = await legacy(`/fhir/facade/Patient/${created.id}`);
  expect(read.status).toBe(200);
  expect(((await read.json()) as Json).name).toEqual([{ use: 'official', family: 'Jones', given: ['Bob'] }]);
});

test('the same new patient sent five times at once is created once, invited once', async () => {
  const body = JSON.stringify(
    stu3Patient({ identifier: [{ system: NHS, value: '9434765919' }], name: [{ family: 'Race', given: ['Rita'] }], telecom: [{ system: 'email', value: 'rita@example.org' }] }),
  );
  const mailBefore = (await readdir(path.join(server.dataDir, 'mail'))).length;
  const answers = await Promise.all(Array.from({ length: 5 }, () => legacy('/fhir/demographics/Patient/$process-message', { method: 'POST', body })));
  const statuses = answers.map((a) => a.status).sort();
  expect(statuses.every((s) => s === 200 || s === 201)).toBe(true);
  expect(statuses.filter((s) => s === 201)).toHaveLength(1);
  const ids = new Set(await Promise.all(answers.map(async (a) => ((await a.json()) as Json).id)));
  expect(ids.size).toBe(1);
  const found = await graphql(`
    {
      nativePatients(nhsNumber: "9434765919") {
        id
      }
    }
  `);
  expect(found.data.nativePatients).toHaveLength(1);
  expect((await readdir(path.join(server.dataDir, 'mail'))).length).toBe(mailBefore + 1);
});

test('the facade serves the native record as STU3: read and search, every resource valid STU3, never customer-endpoint data', async () => {
  // Customer-endpoint data about the same patient: never on the facade.
  const own = await tenant.fetch('Observation', {
    method: 'POST',
    body: JSON.stringify({ resourceType: 'Observation', status: 'final', code: { text: 'customer feed' }, valueString: 'from the FHIR feed' }),
  });
  expect(own.status).toBe(201);
  const note = await graphql(ADD_ENTRY.replace('value unit', 'value unit title'), {
    input: { patientId: nativePatientId, kind: 'note', occurredAt: '2026-12-02', title: 'Clinic visit', text: 'Feeling better.' },
  });
  expect(note.errors).toBeUndefined();
  const appointment = await graphql(ADD_ENTRY, {
    input: { patientId: nativePatientId, kind: 'appointment', occurredAt: '2026-12-20T10:00:00Z', endsAt: '2026-12-20T10:30:00Z', title: 'Review' },
  });
  expect(appointment.errors).toBeUndefined();
  const questionnaire = await graphql(`
    mutation {
      nativeCreateQuestionnaire(title: "Mood", items: [{ linkId: "q1", text: "How are you?", type: "string" }, { linkId: "q2", text: "Score", type: "integer" }]) {
        id
      }
    }
  `);
  const questionnaireId = questionnaire.data.nativeCreateQuestionnaire.id;
  const answered = await graphql(
    `
      mutation A($q: ID!, $p: ID!) {
        nativeAnswerQuestionnaire(questionnaireId: $q, patientId: $p, answers: [{ linkId: "q1", value: "Fine" }, { linkId: "q2", value: "7" }]) {
          id
        }
      }
    `,
    {
      q: questionnaireId,
      p: nativePatientId,
    },
  );
  expect(answered.errors).toBeUndefined();
  const letter = await graphql(
    `
      mutation L($p: ID!) {
        nativeSendLetter(patientId: $p, subject: "Results", body: "Your results are normal.") {
          id
          readAt
        }
      }
    `,
    { p: nativePatientId },
  );
  const read = await graphql(
    `
      mutation R($id: ID!) {
        nativeMarkLetterRead(id: $id) {
          readAt
        }
      }
    `,
    { id: letter.data.nativeSendLetter.id },
  );
  expect(read.data.nativeMarkLetterRead.readAt).toMatch(/^2\d{3}-/);

  const counts: Record<string, number> = {};
  for (const type of ['Patient', 'Appointment', 'Observation', 'DocumentReference', 'Communication', 'Questionnaire', 'QuestionnaireResponse']) {
    const res = await legacy(`/fhir/facade/${type}`);
    expect(res.status).toBe(200);
    const bundle = (await res.json()) as Json;
    counts[type] = (bundle.entry ?? []).length;
    for (const e of bundle.entry ?? []) {
      expect(e.fullUrl.startsWith(`${server.url}/fhir/facade/${type}/`)).toBe(true);
      expect(() => assertValidResource('STU3', e.resource, type)).not.toThrow();
    }
  }
  expect(counts).toEqual({ Patient: 3, Appointment: 1, Observation: 1, DocumentReference: 1, Communication: 1, Questionnaire: 1, QuestionnaireResponse: 1 });

  const observations = (await (await legacy(`/fhir/facade/Observation?patient=${nativePatientId}&code=http://loinc.org|4548-4`)).json()) as Json;
  expect(observations.entry.map((e: Json) => e.resource.valueQuantity.value)).toEqual([7.1]);
  const documents = (await (await legacy(`/fhir/facade/DocumentReference?patient=${nativePatientId}&indexed=2026-12-02`)).json()) as Json;
  expect(documents.entry[0].resource.indexed).toBe('2026-12-02T00:00:00.000Z');
  const responses = (await (await legacy(`/fhir/facade/QuestionnaireResponse?patient=${nativePatientId}`)).json()) as Json;
  expect(responses.entry[0].resource.questionnaire).toEqual({ reference: `Questionnaire/${questionnaireId}` });
  const letters = (await (await legacy(`/fhir/facade/Communication?patient=${nativePatientId}`)).json()) as Json;
  expect(letters.entry[0].resource.received).toBeDefined();
  // The customer's own Observation is not there by any search.
  const everything = (await (await legacy(`/fhir/facade/Observation?_count=1000`)).json()) as Json;
  expect(JSON.stringify(everything)).not.toContain('from the FHIR feed');

  const metadata = (await (await fetch(`${server.url}/fhir/facade/metadata`)).json()) as Json;
  expect(metadata.fhirVersion).toBe('3.0.2');
  expect(metadata.rest[0].resource.map((r: Json) => r.type)).toEqual([
    'Appointment',
    'Communication',
    'DocumentReference',
    'Observation',
    'Patient',
    'Questionnaire',
    'QuestionnaireResponse',
  ]);
});
