// Validation from the definitions (R4 json.html, datatypes.html, the StructureDefinitions): what HL7's JSON
// schema alone accepts wrongly or refuses wrongly.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { invariantViolations } from '../../src/fhir/invariants';
import { FhirDecimal, parseFhirJson } from '../../src/fhir/losslessJson';
import { OperationOutcomeError } from '../../src/fhir/outcome';
import type { Resource } from '../../src/fhir/types';
import { assertValidResource, warmValidation } from '../../src/fhir/validation';

function issues(body: unknown, version: 'R4' | 'STU3' = 'R4'): string[] {
  try {
    assertValidResource(version, body);
  } catch (e) {
    if (e instanceof OperationOutcomeError) return (e.outcome.issue as { diagnostics: string }[]).map((i) => i.diagnostics);
    throw e;
  }
  return [];
}

const observation = { resourceType: 'Observation', status: 'final', code: { text: 'x' } };

describe('valid R4 the published schema refuses is accepted', () => {
  test('extensions of canonical elements: _profile, _targetProfile, _derivedFrom', () => {
    const ext = { extension: [{ url: 'http://example.org/x', valueString: 'y' }] };
    expect(issues({ ...observation, meta: { profile: ['http://example.org/p'], _profile: [ext] } })).toEqual([]);
    expect(
      issues({
        resourceType: 'StructureDefinition',
        url: 'http://example.org/sd',
        name: 'X',
        status: 'draft',
        kind: 'resource',
        abstract: false,
        type: 'Patient',
        baseDefinition: 'http://hl7.org/fhir/StructureDefinition/Patient',
        _baseDefinition: ext,
        derivation: 'constraint',
        differential: { element: [{ id: 'Patient.link', path: 'Patient.link', type: [{ code: 'Reference', targetProfile: ['http://x/a'], _targetProfile: [ext] }] }] },
      }),
    ).toEqual([]);
    expect(issues({ resourceType: 'Questionnaire', status: 'draft', derivedFrom: ['http://x/y'], _derivedFrom: [ext] })).toEqual([]);
  });

  test('Patient._id, and a repeating primitive whose twin holds null', () => {
    expect(issues({ resourceType: 'Patient', id: 'a', _id: { extension: [{ url: 'http://x', valueBoolean: true }] } })).toEqual([]);
    expect(issues({ resourceType: 'Patient', name: [{ given: ['A', 'B'], _given: [null, { extension: [{ url: 'http://x', valueString: 'c' }] }] }] })).toEqual([]);
  });

  test('a string with a no-break space', () => {
    expect(issues({ resourceType: 'Patient', name: [{ family: 'van\u00a0Dijk' }] })).toEqual([]);
  });
});

describe('invalid R4 the published schema accepts is refused, naming the element and the rule', () => {
  test('empty arrays, empty objects and null', () => {
    expect(issues({ resourceType: 'Patient', name: [] })).toEqual([expect.stringMatching(/^Patient\.name: must not be an empty array/)]);
    expect(issues({ resourceType: 'Patient', maritalStatus: {} })).toEqual([expect.stringMatching(/^Patient\.maritalStatus: must not be an empty object/)]);
    expect(issues({ resourceType: 'Patient', meta: null })).toEqual([expect.stringMatching(/^Patient\.meta: must be an object/)]);
  });

  test('invalid base64 in Attachment.data', () => {
    expect(issues({ resourceType: 'Patient', photo: [{ contentType: 'image/png', data: 'not base64!' }] })).toEqual([
      expect.stringMatching(/^Patient\.photo\[0\]\.data: is not valid base64/),
    ]);
    expect(issues({ resourceType: 'Patient', photo: [{ contentType: 'image/png', data: 'aGVsbG8=' }] })).toEqual([]);
  });

  test('a missing required element (min cardinality)', () => {
    expect(issues({ resourceType: 'Observation', code: { text: 'x' } })).toEqual(["Observation.status: missing required element 'status'"]);
    expect(issues({ resourceType: 'Observation', status: 'final', code: { text: 'x' }, component: [{ code: { text: 'y' } }], referenceRange: [{ text: 'r' }] })).toEqual([]);
    expect(issues({ resourceType: 'Patient', link: [{ type: 'seealso' }] })).toEqual(["Patient.link[0].other: missing required element 'other'"]);
    // A required primitive may be present through its extensions only.
    expect(issues({ resourceType: 'Observation', _status: { extension: [{ url: 'http://x', valueString: 'y' }] }, code: { text: 'x' } })).toEqual([]);
  });

  test('invalid primitive formats: id, dateTime', () => {
    expect(issues({ resourceType: 'Patient', id: 'has space' })).toEqual([expect.stringMatching(/^Patient\.id: must match pattern/)]);
    expect(issues({ resourceType: 'Patient', birthDate: '1970-13-01' })).toEqual([expect.stringMatching(/^Patient\.birthDate: must match pattern/)]);
  });
});

describe('the core FHIRPath invariants of the StructureDefinitions', () => {
  test('per-1: a Period whose end is before its start', () => {
    const encounter = { resourceType: 'Encounter', status: 'finished', class: { system: 'http://x', code: 'AMB' } };
    expect(issues({ ...encounter, period: { start: '2020-01-02', end: '2020-01-01' } })).toEqual([
      expect.stringMatching(/^Encounter\.period: per-1: If present, start SHALL have a lower value than end/),
    ]);
    expect(issues({ ...encounter, period: { start: '2020-01-01', end: '2020-01-02' } })).toEqual([]);
    expect(issues({ ...observation, effectivePeriod: { start: '2020-01-02', end: '2020-01-01' } })).toEqual([
      expect.stringMatching(/^Observation\.effective\.ofType\(Period\): per-1/),
    ]);
  });

  test('dom-3: a contained resource nothing refers to; dom-2: contained in contained', () => {
    const contained = { resourceType: 'Practitioner', id: 'p1' };
    expect(issues({ ...observation, contained: [contained] })).toEqual([expect.stringMatching(/^Observation: dom-3/)]);
    expect(issues({ ...observation, contained: [contained], performer: [{ reference: '#p1' }] })).toEqual([]);
  });

  test('a resource-specific invariant: obs-6 (dataAbsentReason only without a value)', () => {
    expect(issues({ ...observation, valueString: 'x', dataAbsentReason: { text: 'unknown' } })).toEqual([expect.stringMatching(/^Observation: obs-6/)]);
  });

  test('rng-2 compares decimals by value whatever their digits', () => {
    const mg = (value: unknown) => ({ value, system: 'http://unitsofmeasure.org', code: 'mg', unit: 'mg' });
    const range = (low: unknown, high: unknown) => ({ ...observation, valueRange: { low: mg(low), high: mg(high) } });
    expect(issues(range(new FhirDecimal('1.50'), new FhirDecimal('2.0')))).toEqual([]);
    expect(issues(range(new FhirDecimal('3.50'), 2))).toEqual([expect.stringMatching(/rng-2/)]);
  });
});

describe('invariant shortcuts change the cost, never the verdict', () => {
  const encounter = { resourceType: 'Encounter', status: 'finished', class: { system: 'http://x', code: 'AMB' } };

  test('per-1 on instants compares them as instants, across time zones; an extension on start goes to the engine', () => {
    // 10:00+02:00 is 08:00Z, before 09:00Z: valid although the text sorts after it.
    expect(issues({ ...encounter, period: { start: '2020-01-01T10:00:00+02:00', end: '2020-01-01T09:00:00Z' } })).toEqual([]);
    expect(issues({ ...encounter, period: { start: '2020-01-01T10:00:00Z', end: '2020-01-01T09:00:00+02:00' } })).toEqual([expect.stringMatching(/^Encounter\.period: per-1/)]);
    const extended = { start: '2020-01-02T00:00:00Z', _start: { extension: [{ url: 'http://x', valueString: 'y' }] }, end: '2020-01-01T00:00:00Z' };
    expect(issues({ ...encounter, period: extended })).toEqual([expect.stringMatching(/^Encounter\.period: per-1/)]);
    // Each of several periods is checked: one bad one among good ones is found.
    const good = { start: '2020-01-01T00:00:00Z', end: '2020-01-02T00:00:00Z' };
    const claim = (items: unknown[]) => ({ ...encounter, location: items.map((period) => ({ location: { reference: 'Location/1' }, period })) });
    expect(issues(claim([good, good]))).toEqual([]);
    expect(issues(claim([good, { start: good.end, end: good.start }, good]))).toEqual([expect.stringMatching(/^Encounter\.location\.period: per-1/)]);
  });

  test('where(…) chains: org-2 (no home address), con-5 (no clinicalStatus when entered-in-error), dom-4 (contained without versionId)', () => {
    const org = { resourceType: 'Organization', name: 'x' };
    expect(issues({ ...org, address: [{ use: 'work', city: 'a' }] })).toEqual([]);
    expect(
      issues({
        ...org,
        address: [
          { use: 'work', city: 'a' },
          { use: 'home', city: 'b' },
        ],
      }),
    ).toEqual([expect.stringMatching(/^Organization\.address: org-2/)]);
    const condition = {
      resourceType: 'Condition',
      subject: { reference: 'Patient/1' },
      clinicalStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-clinical', code: 'active' }] },
    };
    const verification = (code: string) => ({ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-ver-status', code }] });
    expect(issues({ ...condition, verificationStatus: verification('confirmed') })).toEqual([]);
    expect(issues({ ...condition, verificationStatus: verification('entered-in-error') })).toEqual([expect.stringMatching(/^Condition: con-5/)]);
    const contained = (meta: unknown) => ({ ...observation, contained: [{ resourceType: 'Practitioner', id: 'p1', meta }], performer: [{ reference: '#p1' }] });
    expect(issues(contained({ source: 'x' }))).toEqual([]);
    expect(issues(contained({ versionId: '1', lastUpdated: '2020-01-01T00:00:00Z' }))).toEqual([expect.stringMatching(/^Observation: dom-4/)]);
  });

  test('on Synthea R4 and on variants that break per-1, org-2 and con-5, the shortcuts report exactly what the engine alone does', () => {
    const dir = path.resolve(__dirname, '../../../shared/data/synthea-r4');
    const files = readdirSync(dir)
      .filter((f) => f.endsWith('.json'))
      .sort()
      .slice(0, 3);
    const resources = files.flatMap((f) => (parseFhirJson(readFileSync(path.join(dir, f), 'utf8')) as { entry: { resource: Resource }[] }).entry.map((e) => e.resource));
    // Every Period reversed, every address and telecom made 'home', every verification status entered-in-error.
    const breaking = (node: unknown): unknown => {
      if (Array.isArray(node)) return node.map(breaking);
      if (node === null || typeof node !== 'object' || node instanceof FhirDecimal) return node;
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(node)) out[k] = breaking(v);
      if (typeof out.start === 'string' && typeof out.end === 'string') [out.start, out.end] = [out.end, out.start];
      if (typeof out.use === 'string') out.use = 'home';
      if (out.code === 'confirmed') out.code = 'entered-in-error';
      return out;
    };
    let broken = 0;
    for (const resource of [...resources, ...resources.map((r) => breaking(r) as Resource)]) {
      const fast = invariantViolations('R4', resource as Resource & { resourceType: string });
      expect(fast).toEqual(invariantViolations('R4', resource as Resource & { resourceType: string }, { shortcuts: false }));
      broken += fast.length ? 1 : 0;
    }
    expect(broken).toBeGreaterThan(100);
  });
});

// The server warms the validator after it listens: a request that arrives meanwhile must not wait for the
// whole compilation (most of a second of CPU), so the warm-up hands the event loop back between its slices.
test('the validator warm-up yields to other work between slices, then validates', async () => {
  const order: string[] = [];
  const warm = warmValidation('STU3').then(() => order.push('warm-up done'));
  setImmediate(() => order.push('other work'));
  await warm;
  expect(order).toEqual(['other work', 'warm-up done']);
  expect(issues({ resourceType: 'Patient', gender: 'neither' }, 'STU3').join(' ')).toMatch(/gender/);
});
