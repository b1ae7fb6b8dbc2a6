import { checkInclusion, exclusionTarget, groupKeys, mergeGroup, referenceSites, SUPPORTED_TYPES, withSourceTracking, SOURCE_SYSTEM } from '../../src/aggregator/rules';
import { FhirDecimal, stringifyFhirJson } from '../../src/fhir/losslessJson';
import type { Resource } from '../../src/fhir/types';

const supported = new Set(SUPPORTED_TYPES);
const NHS = 'https://fhir.nhs.uk/Id/nhs-number';

describe('inclusion rules', () => {
  test.each([
    [{ resourceType: 'MedicationStatement', status: 'active', subject: { identifier: { system: NHS, value: '1' } } }, /MedicationStatement.subject has no 'reference'/],
    [{ resourceType: 'MedicationStatement', status: 'active', subject: { reference: '#p1' } }, /contained reference/],
    [{ resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference: 'Group/1' } }, /Group, which the aggregation does not support/],
    [{ resourceType: 'Patient', name: [{ family: 'X' }] }, /at least one identifier/],
    [{ resourceType: 'Patient', identifier: [{ system: NHS, value: '1' }, { value: '2' }] }, /identifier\[1\] has no system/],
    [{ resourceType: 'Medication', code: { coding: [{ code: 'x' }] } }, /coding\[0\] has no system/],
    [{ resourceType: 'Person', name: [{ family: 'X' }] }, /Person needs link.target/],
    [{ resourceType: 'PractitionerRole', practitioner: { reference: 'Practitioner/1' } }, /needs organization/],
    [{ resourceType: 'Observation', status: 'final', code: { text: 'x' }, valueReference: undefined, performer: [{ display: 'Dr X' }] }, /performer\[0\] has no 'reference'/],
  ])('%j is excluded', (resource, reason) => {
    expect(checkInclusion(resource as Resource, supported)?.reason).toMatch(reason);
  });

  test('an exclusion about a reference records the type referred to, as the reference names it; one about the resource itself none', () => {
    const toGroup = checkInclusion({ resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference: 'http://x/fhir/Group/1' } } as Resource, supported);
    expect(toGroup).toMatchObject({ rule: 'reference-to-unsupported-type', targetType: 'Group' });
    expect(exclusionTarget(toGroup!)).toBe('Group');
    // An STU3 name that R4 renamed, when its R4 type is not aggregated: the name the reference used.
    const withoutServiceRequest = new Set(SUPPORTED_TYPES.filter((t) => t !== 'ServiceRequest'));
    const toOldName = checkInclusion(
      { resourceType: 'Procedure', status: 'completed', subject: { reference: 'Patient/p' }, basedOn: [{ reference: 'ProcedureRequest/r' }] } as Resource,
      withoutServiceRequest,
    );
    expect(exclusionTarget(toOldName!)).toBe('ProcedureRequest');
    // What an exclusion waits for names its type.
    expect(exclusionTarget({ rule: 'target-not-aggregated', reason: 'anything', waitingFor: 'Encounter/e1' })).toBe('Encounter');
    expect(exclusionTarget({ rule: 'source-organization-not-aggregated', reason: 'anything', waitingFor: 'Organization/o-1.2' })).toBe('Organization');
    expect(exclusionTarget(checkInclusion({ resourceType: 'Patient', name: [{ family: 'X' }] } as Resource, supported)!)).toBeUndefined();
  });

  test('absolute references are kept with the server part stripped', () => {
    const r = { resourceType: 'MedicationStatement', status: 'active', subject: { reference: 'http://example.com/fhir/Patient/123' } } as Resource;
    expect(checkInclusion(r, supported)).toBeUndefined();
    expect((r.subject as { reference: string }).reference).toBe('Patient/123');
  });
});

describe('reference sites', () => {
  test('every Reference is found with its path: typed elements, choice elements, references inside datatypes and arrays; not in contained resources nor primitive extensions', () => {
    const r = {
      resourceType: 'Observation',
      status: 'final',
      _status: { extension: [{ url: 'x', valueReference: { reference: 'Patient/in-primitive-extension' } }] },
      contained: [{ resourceType: 'Patient', id: 'c', managingOrganization: { reference: 'Organization/in-contained' } }],
      code: { coding: [{ system: 's', code: 'c' }], text: 't' },
      subject: { reference: 'Patient/p' },
      performer: [{ reference: 'Practitioner/a' }, { display: 'no reference, but typed Reference' }, { reference: 'Organization/b' }],
      extension: [
        { url: 'u', valueReference: { reference: 'Encounter/in-extension' } },
        { url: 'v', valueString: 's' },
      ],
      component: [
        { code: { text: 'c' }, valueQuantity: { value: new FhirDecimal('1.50') } },
        { code: { text: 'd' }, extension: [{ url: 'w', valueReference: { reference: 'Device/d' } }] },
      ],
      valueReference: undefined,
      note: [{ authorReference: { reference: 'Practitioner/n' }, text: 'x' }],
      hasMember: [],
    } as unknown as Resource;
    const sites = referenceSites(r);
    expect(sites.map((s) => [s.expression, s.holder.reference ?? s.holder.display])).toEqual([
      ['Observation.subject', 'Patient/p'],
      ['Observation.performer[0]', 'Practitioner/a'],
      ['Observation.performer[1]', 'no reference, but typed Reference'],
      ['Observation.performer[2]', 'Organization/b'],
      ['Observation.extension[0].valueReference', 'Encounter/in-extension'],
      ['Observation.component[1].extension[0].valueReference', 'Device/d'],
      ['Observation.note[0].authorReference', 'Practitioner/n'],
    ]);
    // The holders are the resource's own objects: rewriting a reference rewrites the resource.
    expect(sites[0].holder).toBe(r.subject);
  });

  test('a Reference that holds another Reference is one site', () => {
    const r = {
      resourceType: 'Observation',
      status: 'final',
      code: { text: 'x' },
      subject: { reference: 'Patient/p', extension: [{ url: 'u', valueReference: { reference: 'Patient/q' } }] },
    } as Resource;
    expect(referenceSites(r).map((s) => s.expression)).toEqual(['Observation.subject']);
  });
});

describe('merge (DESIGN §3 worked example)', () => {
  const A = {
    resource: {
      resourceType: 'Patient',
      extension: [{ url: 'pref', valueString: 'from-A' }],
      identifier: [{ system: 'nhs', value: '9449305552' }],
      name: [{ family: 'Smith', given: ['Ann'] }],
      birthDate: '1970-01-01',
      managingOrganization: { reference: 'Organization/o1' },
    } as Resource,
    lastUpdated: '2026-01-01T10:00:00Z',
    store: 'ep-a',
    id: 'a',
  };
  const B = {
    resource: {
      resourceType: 'Patient',
      extension: [
        { url: 'pref', valueString: 'from-B' },
        { url: 'pref', valueString: 'second-in-B' },
      ],
      identifier: [
        { system: 'nhs', value: '9449305552' },
        { system: 'b-mrn', value: 'B-77' },
      ],
      name: [{ family: 'Smith', given: ['Annie'] }],
      birthDate: '1970-01-02',
      _birthDate: { extension: [{ url: 'on-primitive', valueString: 'dropped' }] },
    } as Resource,
    lastUpdated: '2026-01-01T10:05:00Z',
    store: 'ep-b',
    id: 'b',
  };

  test('two feeds merge exactly as the worked example says', () => {
    expect(mergeGroup('Patient', [A, B])).toEqual({
      resourceType: 'Patient',
      extension: [{ url: 'pref', valueString: 'from-B' }],
      identifier: [
        { system: 'nhs', value: '9449305552' },
        { system: 'b-mrn', value: 'B-77' },
        { system: 'nhs', value: '9449305552' },
      ],
      name: [
        { family: 'Smith', given: ['Annie'] },
        { family: 'Smith', given: ['Ann'] },
      ],
      birthDate: '1970-01-02',
    });
  });

  test('after B is gone, A alone', () => {
    expect(mergeGroup('Patient', [A])).toEqual({
      resourceType: 'Patient',
      extension: [{ url: 'pref', valueString: 'from-A' }],
      identifier: [{ system: 'nhs', value: '9449305552' }],
      name: [{ family: 'Smith', given: ['Ann'] }],
      birthDate: '1970-01-01',
    });
  });

  test('Practitioner single-valued elements are not copied; multi-valued are', () => {
    const p = (gender: string, family: string, t: string) => ({
      resource: { resourceType: 'Practitioner', identifier: [{ system: 'gmc', value: '1' }], gender, name: [{ family }] } as Resource,
      lastUpdated: t,
      store: 'ep',
      id: family,
    });
    expect(mergeGroup('Practitioner', [p('male', 'Old', '2020'), p('female', 'New', '2021')])).toEqual({
      resourceType: 'Practitioner',
      identifier: [
        { system: 'gmc', value: '1' },
        { system: 'gmc', value: '1' },
      ],
      name: [{ family: 'New' }, { family: 'Old' }],
    });
  });

  test('Medication drops extensions on codings', () => {
    const m = {
      resource: { resourceType: 'Medication', code: { coding: [{ system: 's', code: 'c', extension: [{ url: 'x', valueString: 'y' }] }] } } as Resource,
      lastUpdated: '2020',
      store: 'ep',
      id: 'm',
    };
    expect(mergeGroup('Medication', [m])).toEqual({ resourceType: 'Medication', code: { coding: [{ system: 's', code: 'c' }] } });
  });

  test('the narrative (text) comes from the most recently updated member that has one, decimals keep their digits', () => {
    const narrative = (who: string) => ({ status: 'generated', div: `<div xmlns="http://www.w3.org/1999/xhtml">${who}</div>` });
    const older = { ...A, resource: { ...A.resource, text: narrative('A') } };
    const newer = { ...B, resource: { ...B.resource, text: narrative('B') } };
    expect(mergeGroup('Patient', [older, newer]).text).toEqual(narrative('B'));
    expect(mergeGroup('Patient', [older, B]).text).toEqual(narrative('A'));
    const weight = { resourceType: 'Medication', code: { coding: [{ system: 's', code: 'c' }] }, amount: { numerator: { value: new FhirDecimal('1.50') } } };
    const merged = mergeGroup('Medication', [{ resource: weight as Resource, lastUpdated: '2020', store: 'ep', id: 'm' }]);
    expect(stringifyFhirJson(merged)).toContain('"numerator":{"value":1.50}');
  });

  test("meta of a merged resource: every member's tags once, newest first; no profile, no security", () => {
    const tagged = (m: typeof A, tags: { system: string; code: string }[], profile: string) => ({
      ...m,
      resource: { ...m.resource, meta: { tag: tags, profile: [profile], security: [{ system: 'http://x', code: 'R' }] } },
    });
    const merged = mergeGroup('Patient', [
      tagged(
        A,
        [
          { system: 't', code: 'a' },
          { system: 't', code: 'both' },
        ],
        'http://p/a',
      ),
      tagged(
        B,
        [
          { system: 't', code: 'both' },
          { system: 't', code: 'b' },
        ],
        'http://p/b',
      ),
    ]);
    expect(merged.meta).toEqual({
      tag: [
        { system: 't', code: 'both' },
        { system: 't', code: 'b' },
        { system: 't', code: 'a' },
      ],
    });
  });

  test('grouping keys', () => {
    expect(groupKeys(B.resource)).toEqual(['nhs|9449305552', 'b-mrn|B-77']);
    expect(groupKeys({ resourceType: 'Medication', code: { coding: [{ system: 's', code: 'c' }] } })).toEqual(['s|c']);
  });
});

test('source tracking replaces client-supplied codings of our systems', () => {
  const r = withSourceTracking(
    {
      resourceType: 'Observation',
      meta: {
        security: [
          { system: SOURCE_SYSTEM.organization, code: 'forged' },
          { system: 'other', code: 'keep' },
        ],
      },
    },
    { organization: 'org-1', patient: 'pat-1' },
  );
  expect(r.meta?.security).toEqual([
    { system: 'other', code: 'keep' },
    { system: SOURCE_SYSTEM.organization, code: 'org-1' },
    { system: SOURCE_SYSTEM.patient, code: 'pat-1' },
  ]);
});
