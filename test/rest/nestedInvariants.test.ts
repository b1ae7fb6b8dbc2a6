import { startServerWithR4AndStu3, type OutcomeBody, type Tenant, type TestServer } from '../support/testServer';

/**
 * The core invariants apply at every depth of a resource, on R4 and STU3 endpoints alike (issue 15 item 2): a
 * datatype inside a datatype (a Period in an Identifier in a Patient, in the Identifier of a Reference, in an
 * extension of an extension), an element defined elsewhere (`Questionnaire.item.item` has the rules of
 * `Questionnaire.item`, at any depth), a contained resource. Each breach is a 400 naming the element and the
 * rule; the same resource put right is created.
 */
let server: TestServer;
let r4: Tenant;
let stu3: Tenant;
beforeAll(async () => ({ server, r4, stu3 } = await startServerWithR4AndStu3()), 300_000);
afterAll(() => server.close());

const post = (tenant: Tenant, body: { resourceType: string }) => tenant.fetch(body.resourceType, { method: 'POST', body: JSON.stringify(body) });

/** Posts `body`, expects a 400 OperationOutcome and returns its issues as `expression: diagnostics`. */
async function refused(tenant: Tenant, body: { resourceType: string }): Promise<string[]> {
  const res = await post(tenant, body);
  const outcome = (await res.json()) as OutcomeBody;
  expect({ status: res.status, resourceType: outcome.resourceType }).toEqual({ status: 400, resourceType: 'OperationOutcome' });
  return outcome.issue.map((i) => `${(i.expression ?? []).join(',')}: ${i.diagnostics}`);
}

const PER_1 = 'per-1: If present, start SHALL have a lower value than end';
const reversed = { start: '2020-01-02', end: '2020-01-01' };
const inOrder = { start: '2020-01-01', end: '2020-01-02' };
const patient = (period: unknown) => ({ resourceType: 'Patient', identifier: [{ system: 'http://example.org/mrn', value: '1', period }] });

/** A group holding a group holding `innermost`: a group must hold items (que-1, R4 and STU3). */
const questionnaire = (innermost: unknown[] | undefined) => ({
  resourceType: 'Questionnaire',
  status: 'draft',
  item: [{ linkId: '1', type: 'group', item: [{ linkId: '1.1', type: 'group', item: [{ linkId: '1.1.1', type: 'group', ...(innermost ? { item: innermost } : {}) }] }] }],
});
const question = [{ linkId: '1.1.1.1', type: 'string' }];

describe.each([
  ['R4', () => r4],
  ['STU3', () => stu3],
] as const)('on an %s endpoint', (_version, tenant) => {
  test('per-1 on the Period of a Patient.identifier', async () => {
    expect(await refused(tenant(), patient(reversed))).toEqual([`Patient.identifier.period: Patient.identifier.period: ${PER_1}`]);
    expect((await post(tenant(), patient(inOrder))).status).toBe(201);
  });

  test('que-1 on a Questionnaire item nested three deep', async () => {
    expect(await refused(tenant(), questionnaire(undefined))).toEqual([
      expect.stringMatching(/^Questionnaire\.item\.item\.item: Questionnaire\.item\.item\.item: que-1: Group items must have nested items/),
    ]);
    expect((await post(tenant(), questionnaire(question))).status).toBe(201);
  });

  test('per-1 on the Period of the Identifier of a Reference', async () => {
    const gp = (period: unknown) => ({ resourceType: 'Patient', generalPractitioner: [{ identifier: { system: 'http://example.org/gp', value: 'g', period }, display: 'Dr A' }] });
    expect(await refused(tenant(), gp(reversed))).toEqual([`Patient.generalPractitioner.identifier.period: Patient.generalPractitioner.identifier.period: ${PER_1}`]);
    expect((await post(tenant(), gp(inOrder))).status).toBe(201);
  });
});

describe('R4: datatypes at any depth, through cycles in the definitions', () => {
  test('a Period in an extension of an extension, and in the extension of a primitive', async () => {
    const nested = (period: unknown) => ({
      resourceType: 'Patient',
      extension: [{ url: 'http://example.org/a', extension: [{ url: 'b', valuePeriod: period }] }],
      birthDate: '1970-01-01',
      _birthDate: { extension: [{ url: 'http://example.org/c', valuePeriod: period }] },
    });
    expect((await refused(r4, nested(reversed))).sort()).toEqual([
      `Patient.birthDate.extension.value.ofType(Period): Patient.birthDate.extension.value.ofType(Period): ${PER_1}`,
      `Patient.extension.extension.value.ofType(Period): Patient.extension.extension.value.ofType(Period): ${PER_1}`,
    ]);
    expect((await post(r4, nested(inOrder))).status).toBe(201);
  });

  test('tim-1 on the Timing.repeat of a Dosage in a MedicationRequest', async () => {
    const request = (repeat: unknown) => ({
      resourceType: 'MedicationRequest',
      status: 'active',
      intent: 'order',
      subject: { reference: 'Patient/p1' },
      medicationCodeableConcept: { text: 'Aspirin' },
      dosageInstruction: [{ text: 'daily', timing: { repeat } }],
    });
    expect(await refused(r4, request({ duration: 1 }))).toEqual([
      expect.stringMatching(/^MedicationRequest\.dosageInstruction\.timing\.repeat: MedicationRequest\.dosageInstruction\.timing\.repeat: tim-1: /),
    ]);
    expect((await post(r4, request({ duration: 1, durationUnit: 'h' }))).status).toBe(201);
  });

  test('a contained resource meets its own type’s rules', async () => {
    const observation = (period: unknown) => ({
      resourceType: 'Observation',
      status: 'final',
      code: { text: 'weight' },
      contained: [patient(period)].map((p) => ({ ...p, id: 'p1' })),
      subject: { reference: '#p1' },
    });
    expect(await refused(r4, observation(reversed))).toEqual([`Observation.contained.identifier.period: Observation.contained.identifier.period: ${PER_1}`]);
    expect((await post(r4, observation(inOrder))).status).toBe(201);
  });
});

test.each([
  ['R4', () => r4],
  ['STU3', () => stu3],
] as const)('%s: a transaction entry breaking a nested invariant is refused with the entry named', async (_version, tenant) => {
  const bundle = {
    resourceType: 'Bundle',
    type: 'transaction',
    entry: [patient(inOrder), patient(reversed)].map((resource) => ({ resource, request: { method: 'POST', url: 'Patient' } })),
  };
  const res = await tenant().fetch('', { method: 'POST', body: JSON.stringify(bundle) });
  const outcome = (await res.json()) as OutcomeBody;
  expect(res.status).toBe(400);
  expect(outcome.issue.map((i) => [i.diagnostics, i.expression])).toEqual([
    [expect.stringMatching(/Patient\.identifier\.period: per-1/), expect.arrayContaining(['Bundle.entry[1]'])],
  ]);
});
