import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { startTestServer, type Tenant, type TestServer } from '../support/testServer';

/**
 * Issue 14, bad input: wrong token family, a missing or mismatched X-Org-Public-Id, writes to the facade,
 * `$process-message` bodies that are not a Patient, are R4-shaped, lack names or the default team, and invalid
 * web-UI entries: each a clear 4xx OperationOutcome naming what and where, and nothing changed.
 */
type Json = Record<string, any>;
const NHS = 'https://fhir.nhs.uk/Id/nhs-number';
const TEAM_ALIAS = 'https://fhir.patientsknowbest.com/structuredefinition/team-alias';

let server: TestServer;
let tenant: Tenant;
let organization: Json;
let otherOrganization: Json;
let legacyToken: string;

beforeAll(async () => {
  server = await startTestServer();
  tenant = await server.provision();
  const customers = (await server.admin<Json>('GET', '/admin/customers')).customers;
  organization = await server.admin<Json>('GET', `/admin/organizations/${customers.find((c: Json) => c.id === tenant.customerId).defaultOrganizationId}`);
  await server.admin('PATCH', `/admin/teams/${organization.defaultTeamId}`, { alias: 'main' });
  await server.admin('POST', '/admin/teams', { organizationId: organization.id, name: 'Other team', alias: 'other' });
  otherOrganization = await server.admin<Json>('POST', '/admin/organizations', { customerId: tenant.customerId, name: 'Another ward' });
  const legacy = await server.admin<Json>('POST', '/admin/clients', { customerId: tenant.customerId, family: 'legacy' });
  legacyToken = await server.token(legacy.client_id, legacy.client_secret, 'legacy');
}, 120_000);
afterAll(async () => server.close());

function legacy(p: string, init: RequestInit = {}, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${server.url}${p}`, {
    ...init,
    headers: { authorization: `Bearer ${legacyToken}`, 'x-org-public-id': organization.publicId, 'content-type': 'application/fhir+json', ...headers },
  });
}

async function graphql(query: string, variables: Json = {}, token = tenant.token): Promise<Json> {
  const res = await fetch(`${server.url}/graphql`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ query, variables }),
  });
  return (await res.json()) as Json;
}

async function outcome(res: Response): Promise<{ status: number; resourceType: string; expression?: string[]; diagnostics: string }> {
  const body = (await res.json()) as Json;
  return { status: res.status, resourceType: body.resourceType, expression: body.issue?.[0]?.expression, diagnostics: body.issue?.[0]?.diagnostics };
}

function patient(overrides: Json = {}): Json {
  return {
    resourceType: 'Patient',
    identifier: [{ system: NHS, value: '9449305552' }],
    name: [{ family: 'Smith', given: ['Ann'] }],
    telecom: [{ system: 'email', value: 'ann@example.org' }],
    extension: [{ url: TEAM_ALIAS, valueString: 'main' }],
    ...overrides,
  };
}

const post = (body: unknown, p = '/fhir/demographics/Patient/$process-message', headers: Record<string, string> = {}) =>
  legacy(p, { method: 'POST', body: typeof body === 'string' ? body : JSON.stringify(body) }, headers);

async function nothingWritten(): Promise<void> {
  // The patient every refused message and mutation names (other tests write other patients).
  const patients = await graphql(`
    {
      nativePatients(nhsNumber: "9449305552") {
        id
      }
    }
  `);
  expect(patients.data.nativePatients).toEqual([]);
  const mail = await readdir(path.join(server.dataDir, 'mail')).catch(() => []);
  expect(mail).toEqual([]);
}

test('the facade and demographics refuse a fhir-family token, a missing or malformed X-Org-Public-Id, and another organisation', async () => {
  for (const p of ['/fhir/facade/Patient', '/fhir/demographics/Patient/$process-message']) {
    const method = p.includes('demographics') ? 'POST' : 'GET';
    const body = method === 'POST' ? JSON.stringify(patient()) : undefined;
    const fhirToken = await fetch(`${server.url}${p}`, {
      method,
      body,
      headers: { authorization: `Bearer ${tenant.token}`, 'x-org-public-id': organization.publicId, 'content-type': 'application/fhir+json' },
    });
    expect(await outcome(fhirToken)).toMatchObject({ status: 401, resourceType: 'OperationOutcome' });
    const noHeader = await fetch(`${server.url}${p}`, { method, body, headers: { authorization: `Bearer ${legacyToken}`, 'content-type': 'application/fhir+json' } });
    expect(await outcome(noHeader)).toMatchObject({ status: 400, expression: ['X-Org-Public-Id'] });
    expect((await legacy(p, { method, body }, { 'x-org-public-id': 'not-a-uuid' })).status).toBe(400);
    const foreign = await legacy(p, { method, body }, { 'x-org-public-id': otherOrganization.publicId });
    expect(await outcome(foreign)).toMatchObject({ status: 403, diagnostics: "X-Org-Public-Id is not the public id of this client's organisation" });
  }
  // Nor does a legacy token open the web UI's GraphQL.
  expect(
    (
      await graphql(
        `
          {
            nativePatients {
              id
            }
          }
        `,
        {},
        legacyToken,
      )
    ).errors[0].extensions.code,
  ).toBe('UNAUTHENTICATED');
  await nothingWritten();
});

test('the facade is read-only (405), serves only its seven types (404) and no customer endpoint', async () => {
  for (const [method, p] of [
    ['POST', '/fhir/facade/Patient'],
    ['PUT', '/fhir/facade/Patient/x'],
    ['DELETE', '/fhir/facade/Patient/x'],
    ['PATCH', '/fhir/facade/Observation/x'],
    ['POST', '/fhir/facade'],
  ] as const) {
    const res = await legacy(p, { method, body: method === 'DELETE' ? undefined : JSON.stringify(patient()) });
    expect(await outcome(res)).toMatchObject({ status: 405, resourceType: 'OperationOutcome' });
  }
  expect((await legacy('/fhir/facade/Organization')).status).toBe(404);
  expect((await legacy('/fhir/facade/Patient/npat-doesnotexist')).status).toBe(404);
  // The native store is no customer endpoint: the organisation's fhir clients cannot write into it directly.
  await graphql(`
    mutation {
      nativeSavePatient(input: { nhsNumber: "9000000009", family: "Temp", given: ["T"] }) {
        id
      }
    }
  `);
  const direct = await fetch(`${server.url}/fhir/customer/native-${organization.id}/Patient`, { headers: { authorization: `Bearer ${tenant.token}` } });
  expect(direct.status).toBe(404);
  const endpoints = (await server.admin<Json>('GET', `/admin/endpoints?customerId=${tenant.customerId}`)).endpoints;
  expect(endpoints.map((e: Json) => e.id)).toEqual([tenant.endpointId]);
});

test('$process-message refuses what is not one valid STU3 Patient with names and an NHS number (400 naming the element)', async () => {
  const cases: [unknown, number, string[] | undefined][] = [
    [{ resourceType: 'Observation', status: 'final', code: { text: 'x' } }, 400, ['resourceType']],
    ['[]', 400, undefined],
    [patient({ name: [{ family: 'Smith' }] }), 400, ['Patient.name[0].given[0]']],
    [patient({ name: [{ given: ['Ann'] }] }), 400, ['Patient.name[0].family']],
    [patient({ name: undefined }), 400, ['Patient.name[0].given[0]']],
    [patient({ identifier: [{ system: 'urn:example:mrn', value: '1' }] }), 400, ['Patient.identifier']],
    [patient({ identifier: [{ system: NHS, value: '1234567890' }] }), 400, ['Patient.nhsNumber']],
    // R4-only: Identifier.use "old" does not exist in STU3.
    [patient({ identifier: [{ use: 'old', system: NHS, value: '9449305552' }] }), 400, undefined],
  ];
  for (const [body, status, expression] of cases) {
    const res = await post(body);
    const got = await outcome(res);
    expect({ body, ...got }).toMatchObject({ body, status, resourceType: 'OperationOutcome', ...(expression ? { expression } : {}) });
  }
  await nothingWritten();
});

test('$process-message needs team aliases of the sending organisation, one its default team (422); other shapes are 404/405', async () => {
  // No team-alias at all (FHIR JSON has no empty arrays: `extension: []` is itself a 400).
  const { extension: _none, ...withoutAliases } = patient();
  const none = await outcome(await post(withoutAliases));
  expect(none).toMatchObject({ status: 422, expression: ['Patient.extension'] });
  const notDefault = await outcome(await post(patient({ extension: [{ url: TEAM_ALIAS, valueString: 'other' }] })));
  expect(notDefault).toMatchObject({ status: 422, diagnostics: expect.stringContaining('default team') });
  const unknown = await outcome(
    await post(
      patient({
        extension: [
          { url: TEAM_ALIAS, valueString: 'main' },
          { url: TEAM_ALIAS, valueString: 'nobody' },
        ],
      }),
    ),
  );
  expect(unknown).toMatchObject({ status: 422, diagnostics: "No team with alias 'nobody' in the sending organisation" });

  expect((await legacy('/fhir/demographics/Patient/$process-message')).status).toBe(405);
  expect((await post(patient(), '/fhir/demographics/Patient/$everything')).status).toBe(404);
  expect((await post(patient(), '/fhir/demographics/Observation/$process-message')).status).toBe(404);
  expect((await post(patient(), '/fhir/demographics/Patient')).status).toBe(404);
  expect((await legacy('/fhir/demographics/metadata')).status).toBe(404);
  await nothingWritten();
});

test('invalid web-UI input is a GraphQL error carrying a 400 OperationOutcome that names the field; nothing is written', async () => {
  const bad = await graphql(`
    mutation {
      nativeSavePatient(input: { nhsNumber: "9449305553", family: "Smith", given: ["Ann"] }) {
        id
      }
    }
  `);
  expect(bad.errors[0].extensions).toMatchObject({ code: 'BAD_USER_INPUT', status: 400, resource: { issue: [{ expression: ['nhsNumber'] }] } });
  const admin = await graphql(
    `
      {
        nativePatients {
          id
        }
      }
    `,
    {},
    server.adminToken,
  );
  expect(admin.errors[0].extensions.code).toBe('FORBIDDEN');
  await nothingWritten();

  const saved = await graphql(`
    mutation {
      nativeSavePatient(input: { nhsNumber: "9434765919", family: "Jones", given: ["Bob"] }) {
        id
      }
    }
  `);
  const patientId = saved.data.nativeSavePatient.id;
  const entries: [Json, string][] = [
    [{ kind: 'measurement', occurredAt: '2026-12-01', codeSystem: 'LOINC', code: '4548-4', value: 'seven' }, 'value'],
    [{ kind: 'measurement', occurredAt: '2026-12-01', codeSystem: 'ICD-10', code: 'x', value: '7' }, 'codeSystem'],
    [{ kind: 'measurement', occurredAt: '2026-12-01', codeSystem: 'LOINC', value: '7' }, 'code'],
    [{ kind: 'note', occurredAt: '2026-12-01' }, 'text'],
    [{ kind: 'note', occurredAt: 'yesterday', text: 'x' }, 'occurredAt'],
    [{ kind: 'appointment', occurredAt: '2026-12-01T10:00:00Z', endsAt: '2026-12-01T09:00:00Z' }, 'endsAt'],
    [{ kind: 'appointment', occurredAt: '2026-12-01', status: 'waitlist' }, 'status'],
    [{ kind: 'diary', occurredAt: '2026-12-01' }, 'kind'],
    [{ kind: 'note', occurredAt: '2026-12-01', text: 'x', privacyLabel: 'SECRET' }, 'privacyLabel'],
  ];
  for (const [input, field] of entries) {
    const res = await graphql(
      `
        mutation A($input: NativeEntryInput!) {
          nativeAddTimelineEntry(input: $input) {
            id
          }
        }
      `,
      { input: { patientId, ...input } },
    );
    expect({ input, extensions: res.errors?.[0]?.extensions }).toMatchObject({ input, extensions: { status: 400, resource: { issue: [{ expression: [field] }] } } });
  }
  const missing = await graphql(`
    mutation {
      nativeAddTimelineEntry(input: { patientId: "npat-nobody", kind: "note", occurredAt: "2026-12-01", text: "x" }) {
        id
      }
    }
  `);
  expect(missing.errors[0].extensions.code).toBe('NOT_FOUND');
  const timeline = await graphql(
    `
      query T($p: ID!) {
        nativeTimeline(patientId: $p) {
          id
        }
      }
    `,
    { p: patientId },
  );
  expect(timeline.data.nativeTimeline).toEqual([]);
});

test("an organisation's native store is no endpoint to the admin doors: not listed, not read, changed, disabled or reported (404)", async () => {
  const saved = await graphql(`
    mutation {
      nativeSavePatient(input: { nhsNumber: "9876543210", family: "Store", given: ["S"] }) {
        id
      }
    }
  `);
  expect(saved.errors).toBeUndefined();
  const store = `native-${organization.id}`;
  const listed = await server.admin<Json>('GET', '/admin/endpoints');
  expect(listed.endpoints.map((e: Json) => e.id)).not.toContain(store);
  const ask = (method: string, p: string, body?: Json) =>
    fetch(`${server.url}${p}`, {
      method,
      headers: { authorization: `Bearer ${server.adminToken}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
  for (const [method, p, body] of [
    ['GET', `/admin/endpoints/${store}`],
    ['PATCH', `/admin/endpoints/${store}`, { enabled: false }],
    ['POST', `/admin/endpoints/${store}/disable`],
    ['POST', `/admin/endpoints/${store}/token`],
    ['GET', `/admin/endpoints/${store}/aggregation-report`],
  ] as [string, string, Json?][]) {
    const res = await ask(method, p, body);
    expect([method, p, res.status]).toEqual([method, p, 404]);
  }
  // The native record still reaches the aggregate: the store was not disabled.
  const again = await graphql(`
    mutation {
      nativeSavePatient(input: { nhsNumber: "9876543210", family: "Store", given: ["Second"] }) {
        id
      }
    }
  `);
  expect(again.errors).toBeUndefined();
});
