// STU3 validation from HL7's STU3 StructureDefinitions (src/fhir/stu3/profiles-*.json.gz): the whole STU3 Synthea
// sample, and the invariant shortcuts against the engine on STU3's own expressions.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { readProfiles } from '../../src/fhir/definitions';
import { invariantViolations } from '../../src/fhir/invariants';
import { FhirDecimal, parseFhirJson } from '../../src/fhir/losslessJson';
import { OperationOutcomeError } from '../../src/fhir/outcome';
import type { Resource } from '../../src/fhir/types';
import { assertValidResource } from '../../src/fhir/validation';

// The shared test data beside the checkout (../shared/data), as test/cli/import.test.ts finds it; a worktree looks one level up.
const DIR = [path.resolve(__dirname, '../../../shared/data/synthea-stu3'), path.resolve(__dirname, '../../../../shared/data/synthea-stu3')].find((d) => existsSync(d));
const maybe = DIR ? test : test.skip;

type Json = Record<string, unknown>;

function issues(body: unknown): string[] {
  try {
    assertValidResource('STU3', body);
  } catch (e) {
    if (e instanceof OperationOutcomeError) return (e.outcome.issue as { diagnostics: string }[]).map((i) => i.diagnostics);
    throw e;
  }
  return [];
}

function sample(files?: number): Resource[] {
  return readdirSync(DIR as string)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .slice(0, files)
    .flatMap((f) => (parseFhirJson(readFileSync(path.join(DIR as string, f), 'utf8')) as { entry: { resource: Resource }[] }).entry.map((e) => e.resource));
}

test('the STU3 definitions are the 3.0.1 StructureDefinitions of every STU3 resource type and datatype, without prose', () => {
  const resources = readProfiles<{ entry: { resource: Json & { snapshot: { element: Json[] } } }[] }>('STU3', 'profiles-resources.json').entry.map((e) => e.resource);
  const types = readProfiles<{ entry: { resource: Json }[] }>('STU3', 'profiles-types.json').entry.map((e) => e.resource);
  expect(new Set([...resources, ...types].map((r) => r.fhirVersion))).toEqual(new Set(['3.0.1']));
  expect(resources.filter((r) => !r.abstract).map((r) => r.id)).toEqual(
    expect.arrayContaining(['Observation', 'Condition', 'MedicationRequest', 'ProcedureRequest', 'ReferralRequest']),
  );
  expect(types.map((r) => r.id)).toEqual(expect.arrayContaining(['Period', 'Quantity', 'Dosage', 'Timing', 'Reference']));
  const status = resources.find((r) => r.id === 'Observation')?.snapshot.element.find((e) => e.path === 'Observation.status');
  expect(status).toEqual({ path: 'Observation.status', min: 1, max: '1', type: [{ code: 'code' }] });
});

describe('STU3 rules the STU3 JSON schema lacks', () => {
  const observation = { resourceType: 'Observation', status: 'final', code: { text: 'x' } };

  test('required elements, primitives and choices included, and present through `_x` alone', () => {
    expect(issues({ resourceType: 'Observation', code: { text: 'x' } })).toEqual(["Observation.status: missing required element 'status'"]);
    expect(issues({ resourceType: 'Observation', _status: { extension: [{ url: 'http://x', valueString: 'y' }] }, code: { text: 'x' } })).toEqual([]);
    expect(issues({ resourceType: 'MedicationRequest', intent: 'order', subject: { reference: 'Patient/1' } })).toEqual([
      "MedicationRequest.medication[x]: missing required element 'medication[x]'",
    ]);
    // Backbone elements and datatypes: Bundle.entry.request.method/url, Extension.url.
    expect(issues({ resourceType: 'Bundle', type: 'batch', entry: [{ request: { url: 'Patient' } }] })).toEqual([
      "Bundle.entry[0].request.method: missing required element 'method'",
    ]);
    expect(issues({ ...observation, extension: [{ valueString: 'x' }] })).toEqual(["Observation.extension[0].url: missing required element 'url'"]);
    // A resource nested in a Bundle is held to its own type's rules.
    expect(issues({ resourceType: 'Bundle', type: 'collection', entry: [{ resource: { resourceType: 'Observation', code: { text: 'x' } } }] })).toEqual([
      "Bundle.entry[0].resource.status: missing required element 'status'",
    ]);
  });

  test('invariants with their STU3 expressions: per-1, obs-6, obs-7, con-3, dom-2, dom-3, ref-1', () => {
    expect(issues({ ...observation, effectivePeriod: { start: '2020-01-02', end: '2020-01-01' } })).toEqual([
      'Observation.effective.ofType(Period): per-1: If present, start SHALL have a lower value than end',
    ]);
    expect(issues({ ...observation, effectivePeriod: { start: '2020-01-01', end: '2020-01-02' } })).toEqual([]);
    expect(issues({ ...observation, valueString: 'x', dataAbsentReason: { text: 'unknown' } })).toEqual([expect.stringMatching(/^Observation: obs-6/)]);
    const code = { coding: [{ system: 'http://loinc.org', code: '8480-6' }] };
    expect(issues({ ...observation, code, valueString: 'x', component: [{ code, valueString: 'y' }] })).toEqual([expect.stringMatching(/^Observation: obs-7/)]);
    // STU3's con-3 (R4 words it otherwise): clinicalStatus unless entered-in-error.
    const condition = { resourceType: 'Condition', subject: { reference: 'Patient/1' } };
    expect(issues({ ...condition, verificationStatus: 'confirmed' })).toEqual([expect.stringMatching(/^Condition: con-3/)]);
    expect(issues({ ...condition, verificationStatus: 'entered-in-error' })).toEqual([]);
    expect(issues({ ...condition, clinicalStatus: 'active' })).toEqual([]);
    // dom-3 as STU3 has it: referred to by a `reference` anywhere in the resource.
    const practitioner = { resourceType: 'Practitioner', id: 'p1' };
    expect(issues({ ...observation, contained: [practitioner] })).toEqual([expect.stringMatching(/^Observation: dom-3/)]);
    expect(issues({ ...observation, contained: [practitioner], performer: [{ reference: '#p1' }] })).toEqual([]);
    expect(issues({ ...observation, contained: [{ ...observation, id: 'o', contained: [practitioner] }], related: [{ target: { reference: '#o' } }] })).toEqual(
      expect.arrayContaining([expect.stringMatching(/^Observation: dom-2/)]),
    );
    expect(issues({ ...observation, subject: { reference: '#nowhere' } })).toEqual([expect.stringMatching(/ref-1/)]);
  });
});

describe('the STU3 Synthea sample', () => {
  maybe('every resource is accepted but for the two errors Synthea makes, which the JSON schema refused before', () => {
    const resources = sample();
    expect(resources.length).toBe(15230);
    const refused = new Map<string, number>();
    for (const resource of resources) {
      const found = issues(resource);
      if (found.length) {
        const key = `${resource.resourceType}: ${found.map((d) => d.replace(/\[\d+\]/g, '[n]')).join('; ')}`;
        refused.set(key, (refused.get(key) ?? 0) + 1);
      }
    }
    // Procedure.reasonReference as an object where STU3 has an array; numberOfRepeatsAllowed 0 where STU3 has a
    // positiveInt (R4 made it an unsignedInt).
    expect(Object.fromEntries(refused)).toEqual({
      'Procedure: Procedure.reasonReference: must be array': 241,
      'MedicationRequest: MedicationRequest.dispenseRequest.numberOfRepeatsAllowed: must be >= 1': 31,
    });
  });

  maybe('on Synthea STU3 and on variants that break per-1, con-3 and ait-1, the shortcuts report exactly what the engine alone does', () => {
    const resources = sample(10);
    // Every Period reversed, every address and telecom made 'home', every clinicalStatus removed.
    const breaking = (node: unknown): unknown => {
      if (Array.isArray(node)) return node.map(breaking);
      if (node === null || typeof node !== 'object' || node instanceof FhirDecimal) return node;
      const out: Json = {};
      for (const [k, v] of Object.entries(node)) if (k !== 'clinicalStatus') out[k] = breaking(v);
      if (typeof out.start === 'string' && typeof out.end === 'string') [out.start, out.end] = [out.end, out.start];
      if (typeof out.use === 'string') out.use = 'home';
      return out;
    };
    const broken = new Map<string, number>();
    for (const resource of [...resources, ...resources.map((r) => breaking(r) as Resource)]) {
      const typed = resource as Resource & { resourceType: string };
      const fast = invariantViolations('STU3', typed);
      expect(fast).toEqual(invariantViolations('STU3', typed, { shortcuts: false }));
      for (const v of fast) broken.set(v.key, (broken.get(v.key) ?? 0) + 1);
    }
    expect([...broken.keys()].sort()).toEqual(['ait-1', 'con-3', 'per-1']);
    expect(broken.get('per-1')).toBeGreaterThan(100);
  });
});
