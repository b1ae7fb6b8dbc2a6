import { applyPatch, parsePatch } from '../../src/fhir/jsonPatch';
import { OperationOutcomeError } from '../../src/fhir/outcome';

const patient = { resourceType: 'Patient', id: 'p1', name: [{ family: 'Smith', given: ['Ann'] }], active: true };

function outcomeOf(fn: () => unknown): OperationOutcomeError {
  try {
    fn();
  } catch (e) {
    if (e instanceof OperationOutcomeError) return e;
    throw e;
  }
  throw new Error('expected an OperationOutcomeError');
}

describe('JSON Patch', () => {
  test('replace, add to an array end and remove apply in order', () => {
    const out = applyPatch(
      patient,
      parsePatch([
        { op: 'replace', path: '/active', value: false },
        { op: 'add', path: '/name/0/given/-', value: 'Marie' },
        { op: 'remove', path: '/name/0/family' },
      ]),
    );
    expect(out).toEqual({ resourceType: 'Patient', id: 'p1', name: [{ given: ['Ann', 'Marie'] }], active: false });
  });

  test('the input document is not modified', () => {
    applyPatch(patient, parsePatch([{ op: 'replace', path: '/active', value: false }]));
    expect(patient.active).toBe(true);
  });

  test('move and copy take their value from "from"', () => {
    const out = applyPatch(
      { a: { b: 1 }, c: [] as number[] },
      parsePatch([
        { op: 'copy', from: '/a/b', path: '/c/0' },
        { op: 'move', from: '/a/b', path: '/d' },
      ]),
    );
    expect(out).toEqual({ a: {}, c: [1], d: 1 });
  });

  test('a failing test operation is a 422 naming the operation', () => {
    const err = outcomeOf(() => applyPatch(patient, parsePatch([{ op: 'test', path: '/active', value: false }])));
    expect(err.status).toBe(422);
    expect(err.outcome.issue[0].expression).toEqual(['patch[0]']);
  });

  test('a path that does not exist is a 422', () => {
    expect(outcomeOf(() => applyPatch(patient, parsePatch([{ op: 'replace', path: '/birthDate', value: '1970' }]))).status).toBe(422);
    expect(outcomeOf(() => applyPatch(patient, parsePatch([{ op: 'remove', path: '/name/5' }]))).status).toBe(422);
  });

  test('a body that is not an operation list is a 400 saying which operation is wrong', () => {
    expect(outcomeOf(() => parsePatch({ op: 'add' })).status).toBe(400);
    const err = outcomeOf(() =>
      parsePatch([
        { op: 'replace', path: '/a', value: 1 },
        { op: 'frobnicate', path: '/a' },
      ]),
    );
    expect(err.status).toBe(400);
    expect(err.outcome.issue[0].expression).toEqual(['patch[1].op']);
  });

  test('~1 and ~0 escape slash and tilde in pointers', () => {
    expect(
      applyPatch(
        { 'a/b': 1, 'c~d': 2 },
        parsePatch([
          { op: 'replace', path: '/a~1b', value: 3 },
          { op: 'remove', path: '/c~0d' },
        ]),
      ),
    ).toEqual({ 'a/b': 3 });
  });
});
