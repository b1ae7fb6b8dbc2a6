import { compileExpression, firstElements } from '../../src/fhir/pathExpression';

/**
 * The direct walk over search-parameter expressions (src/fhir/pathExpression.ts): a union spanning many types
 * (the shape of `patient`, `code`, `date`) selects, for one resource, the values of its own type's terms and of
 * those starting from `Resource`, in the order the terms are written.
 */
describe('union expressions', () => {
  const union = compileExpression(
    'Observation.subject.where(resolve() is Patient) | Resource.meta.tag | Condition.subject | Observation.performer | (Observation.focus) | DomainResource.text.status',
  );

  test("a resource gets its own type's terms and the Resource terms, in the order written", () => {
    const observation = {
      resourceType: 'Observation',
      subject: { reference: 'Patient/p' },
      meta: { tag: [{ code: 't1' }, { code: 't2' }] },
      performer: [{ reference: 'Practitioner/a' }, { reference: 'Organization/b' }],
      focus: [{ reference: 'Group/f' }],
      text: { status: 'generated' },
    };
    expect(union(observation)).toEqual([
      { reference: 'Patient/p' },
      { code: 't1' },
      { code: 't2' },
      { reference: 'Practitioner/a' },
      { reference: 'Organization/b' },
      { reference: 'Group/f' },
      'generated',
    ]);
  });

  test("another type's terms select nothing from it, whatever it holds", () => {
    const condition = { resourceType: 'Condition', subject: { reference: 'Group/g' }, performer: [{ reference: 'Practitioner/x' }], meta: { tag: [{ code: 't' }] } };
    expect(union(condition)).toEqual([{ code: 't' }, { reference: 'Group/g' }]);
    // A Patient subject is selected only by the Observation term's filter, which does not apply to a Condition.
    expect(union({ resourceType: 'Encounter', subject: { reference: 'Patient/p' } })).toEqual([]);
  });

  test('an element (no resourceType) gets the Resource terms alone; null selects nothing', () => {
    expect(union({ subject: { reference: 'Patient/p' }, meta: { tag: [{ code: 'e' }] } })).toEqual([{ code: 'e' }]);
    expect(union(null)).toEqual([]);
  });

  test('the same compiled expression serves many types one after the other', () => {
    for (let i = 0; i < 3; i++) {
      expect(union({ resourceType: 'Condition', subject: { reference: 'Patient/c' } })).toEqual([{ reference: 'Patient/c' }]);
      expect(union({ resourceType: 'Observation', subject: { reference: 'Group/o' } })).toEqual([]);
    }
  });
});

test('firstElements names the elements a resource must have for an expression to select anything, and only where that is certain', () => {
  expect(firstElements('Patient.identifier | Observation.identifier', 'R4', 'Observation')).toEqual(['identifier']);
  expect(firstElements('Resource.meta.profile', 'R4', 'Patient')).toEqual(['meta']);
  expect(firstElements('Observation.status', 'R4', 'Observation')).toEqual(['status']);
  // Terms of other types do not apply: nothing is needed because nothing can be selected.
  expect(firstElements('Condition.code', 'R4', 'Observation')).toEqual([]);
  // A name that is a choice element in some type (`value[x]`, `subject[x]`) may be any `nameX`; a root alone selects
  // the resource itself; the engine's expressions are not read.
  expect(firstElements('(Observation.value as Quantity)', 'R4', 'Observation')).toBeUndefined();
  expect(firstElements('Observation.subject.where(resolve() is Patient)', 'R4', 'Observation')).toBeUndefined();
  expect(firstElements('Observation', 'R4', 'Observation')).toBeUndefined();
  expect(firstElements('Patient.deceased.exists() and Patient.deceased != false', 'R4', 'Patient')).toBeUndefined();
  expect(compileExpression('Patient.identifier | Observation.identifier', 'R4')({ resourceType: 'Observation', status: 'final' })).toEqual([]);
});
