import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { startTestServer, type Tenant, type TestServer } from '../support/testServer';

/**
 * Writes to an STU3 endpoint are validated from HL7's STU3 StructureDefinitions as R4 writes are from R4's (issue
 * 15 item 2): required elements that the STU3 JSON schema leaves out (Observation.status), choice types, and the
 * core FHIRPath invariants with their STU3 expressions; the STU3 Synthea sample is still accepted.
 */
// The shared test data beside the checkout (../shared/data), as test/cli/import.test.ts finds it; a worktree looks one level up.
const DIR = [path.resolve(__dirname, '../../../shared/data/synthea-stu3'), path.resolve(__dirname, '../../../../shared/data/synthea-stu3')].find((d) => existsSync(d));
const maybe = DIR ? test : test.skip;

type Json = Record<string, unknown>;
interface Outcome {
  resourceType: string;
  issue: { severity: string; code: string; diagnostics: string; expression?: string[] }[];
}

let server: TestServer;
let stu3: Tenant;
beforeAll(async () => {
  server = await startTestServer();
  stu3 = await server.provision({ fhirVersion: 'STU3' });
});
afterAll(() => server.close());

const post = (tenant: Tenant, type: string, body: unknown) => tenant.fetch(type, { method: 'POST', body: JSON.stringify(body) });

/** Posts `body` and expects a 400 OperationOutcome; returns its issues as `expression: diagnostics`. */
async function refused(type: string, body: unknown, tenant = stu3): Promise<string[]> {
  const res = await post(tenant, type, body);
  const outcome = (await res.json()) as Outcome;
  expect({ status: res.status, resourceType: outcome.resourceType }).toEqual({ status: 400, resourceType: 'OperationOutcome' });
  return outcome.issue.map((i) => `${(i.expression ?? []).join(',')}: ${i.diagnostics}`);
}

const bundles = (): string[] =>
  readdirSync(DIR as string)
    .filter((f) => f.endsWith('.json'))
    .sort();
const read = (file: string) => JSON.parse(readFileSync(path.join(DIR as string, file), 'utf8')) as { entry: { fullUrl?: string; resource: Json }[] };

/**
 * Synthea's two departures from STU3, which the JSON schema refused before this change too (test/fhir/
 * stu3Validation.test.ts counts them): `Procedure.reasonReference` written as an object where STU3 has an array,
 * and `dispenseRequest.numberOfRepeatsAllowed: 0` where STU3 has a positiveInt. Repaired so that a whole record
 * can be sent as one transaction.
 */
function repaired(resource: Json): Json {
  const out = repeatsRepaired(resource);
  if (out.reasonReference && !Array.isArray(out.reasonReference)) out.reasonReference = [out.reasonReference];
  return out;
}

function repeatsRepaired(resource: Json): Json {
  const out = { ...resource };
  const dispense = out.dispenseRequest as Json | undefined;
  if (dispense?.numberOfRepeatsAllowed === 0) {
    const { numberOfRepeatsAllowed: _n, ...rest } = dispense;
    out.dispenseRequest = rest;
  }
  return out;
}

/** A Synthea collection Bundle as a transaction creating every resource (`urn:uuid:` fullUrls resolve its references). */
function transaction(file: string, change: (r: Json) => Json = repaired): Json {
  return {
    resourceType: 'Bundle',
    type: 'transaction',
    entry: read(file).entry.map((e) => ({ ...(e.fullUrl ? { fullUrl: e.fullUrl } : {}), resource: change(e.resource), request: { method: 'POST', url: e.resource.resourceType } })),
  };
}

describe('the STU3 Synthea sample is accepted', () => {
  // Every tenth record (15 of 150, holding every type of the sample), whole, as the loaders send it; every
  // resource of all 150 is checked offline in test/fhir/stu3Validation.test.ts.
  maybe('15 whole records as transactions, with every resource created', async () => {
    const files = bundles().filter((_f, i) => i % 10 === 0);
    let created = 0;
    const types = new Set<string>();
    const sampleTypes = new Set(bundles().flatMap((f) => read(f).entry.map((e) => e.resource.resourceType as string)));
    for (const file of files) {
      const res = await stu3.fetch('', { method: 'POST', body: JSON.stringify(transaction(file)) });
      const body = (await res.json()) as { entry?: { response: { status: string } }[]; issue?: unknown };
      expect({ file, status: res.status, issue: body.issue }).toEqual({ file, status: 200, issue: undefined });
      for (const e of body.entry ?? []) if (e.response.status.startsWith('201')) created++;
      for (const e of read(file).entry) types.add(e.resource.resourceType as string);
    }
    expect(created).toBeGreaterThan(1000);
    expect([...types].sort()).toEqual([...sampleTypes].sort());
  });

  maybe("a record with Synthea's STU3 error left in is refused, naming the entry and the element", async () => {
    const file = bundles().find((f) => read(f).entry.some((e) => e.resource.reasonReference && !Array.isArray(e.resource.reasonReference))) as string;
    const res = await stu3.fetch('', { method: 'POST', body: JSON.stringify(transaction(file, repeatsRepaired)) });
    expect(res.status).toBe(400);
    const outcome = (await res.json()) as Outcome;
    expect(outcome.issue[0].diagnostics).toMatch(/Procedure\.reasonReference: must be array/);
    expect(outcome.issue[0].expression).toEqual(expect.arrayContaining([expect.stringMatching(/^Bundle\.entry\[\d+\]$/)]));
  });
});

describe('invalid STU3 is refused with a 400 naming the element and the rule', () => {
  const observation = { resourceType: 'Observation', status: 'final', code: { text: 'Body weight' }, valueQuantity: { value: 70, unit: 'kg' } };

  test('a required primitive the STU3 JSON schema does not require: Observation.status', async () => {
    const { status: _s, ...noStatus } = observation;
    expect(await refused('Observation', noStatus)).toEqual(["Observation.status: Observation.status: missing required element 'status'"]);
    // Present through its extension alone, as FHIR allows.
    expect((await post(stu3, 'Observation', { ...noStatus, _status: { extension: [{ url: 'http://example.org/x', valueString: 'y' }] } })).status).toBe(201);
    expect((await post(stu3, 'Observation', observation)).status).toBe(201);
  });

  test('a required choice element: MedicationRequest.medication[x]', async () => {
    const request = { resourceType: 'MedicationRequest', intent: 'order', subject: { reference: 'Patient/p1' } };
    expect(await refused('MedicationRequest', request)).toEqual(["MedicationRequest.medication[x]: MedicationRequest.medication[x]: missing required element 'medication[x]'"]);
    expect((await post(stu3, 'MedicationRequest', { ...request, medicationCodeableConcept: { text: 'Aspirin' } })).status).toBe(201);
  });

  test('per-1: a Period whose end is before its start', async () => {
    const encounter = { resourceType: 'Encounter', status: 'finished', period: { start: '2020-01-02T10:00:00+00:00', end: '2020-01-01T10:00:00+00:00' } };
    expect(await refused('Encounter', encounter)).toEqual(['Encounter.period: Encounter.period: per-1: If present, start SHALL have a lower value than end']);
    expect(await refused('Observation', { ...observation, effectivePeriod: { start: '2020-01-02', end: '2020-01-01' } })).toEqual([
      'Observation.effective.ofType(Period): Observation.effective.ofType(Period): per-1: If present, start SHALL have a lower value than end',
    ]);
  });

  test('an empty array', async () => {
    expect(await refused('Patient', { resourceType: 'Patient', name: [] })).toEqual([
      'Patient.name: Patient.name: must not be an empty array (json.html: an element has a value or children)',
    ]);
  });

  test("STU3's own invariants: con-3 (a Condition's clinicalStatus), dom-3 as STU3 words it", async () => {
    const condition = { resourceType: 'Condition', subject: { reference: 'Patient/p1' }, code: { text: 'Asthma' }, verificationStatus: 'confirmed' };
    expect(await refused('Condition', condition)).toEqual(['Condition: Condition: con-3: Condition.clinicalStatus SHALL be present if verificationStatus is not entered-in-error']);
    expect((await post(stu3, 'Condition', { ...condition, clinicalStatus: 'active' })).status).toBe(201);
    const contained = { ...observation, contained: [{ resourceType: 'Practitioner', id: 'p1' }] };
    expect(await refused('Observation', contained)).toEqual([
      'Observation: Observation: dom-3: If the resource is contained in another resource, it SHALL be referred to from elsewhere in the resource',
    ]);
    expect((await post(stu3, 'Observation', { ...contained, performer: [{ reference: '#p1' }] })).status).toBe(201);
  });

  test("each version's own definitions: an STU3 Goal is valid STU3, and refused on R4 for R4's required elements", async () => {
    const goal = { resourceType: 'Goal', status: 'proposed', description: { text: 'Lose weight' } };
    expect((await post(stu3, 'Goal', goal)).status).toBe(201);
    const { status: _s, ...noStatus } = goal;
    expect(await refused('Goal', noStatus)).toEqual(["Goal.status: Goal.status: missing required element 'status'"]);
    const r4 = await server.provision({ fhirVersion: 'R4' });
    expect(await refused('Goal', goal, r4)).toEqual(
      expect.arrayContaining([
        "Goal.lifecycleStatus: Goal.lifecycleStatus: missing required element 'lifecycleStatus'",
        "Goal.subject: Goal.subject: missing required element 'subject'",
      ]),
    );
  });

  test('a transaction entry breaking a rule is refused with the entry named', async () => {
    const { status: _s, ...noStatus } = observation;
    const bundle = {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [observation, noStatus].map((resource) => ({ resource, request: { method: 'POST', url: 'Observation' } })),
    };
    const res = await stu3.fetch('', { method: 'POST', body: JSON.stringify(bundle) });
    expect(res.status).toBe(400);
    const outcome = (await res.json()) as Outcome;
    expect(outcome.issue.map((i) => [i.diagnostics, i.expression])).toEqual([
      [expect.stringMatching(/Observation\.status: missing required element 'status'/), expect.arrayContaining(['Bundle.entry[1]'])],
    ]);
  });
});
