import { ID, relativePatientId } from '../../src/fhir/ids';

/** The one definition of FHIR's id (datatypes.html#id) that every layer checks ids with. */
test('an id is 1 to 64 of A-Z a-z 0-9 - and .', () => {
  for (const ok of ['a', 'Z9', 'example-1.2', 'x'.repeat(64)]) expect(ID.test(ok)).toBe(true);
  for (const bad of ['', 'x'.repeat(65), 'a_b', 'a/b', 'a b', 'é', 'a\n']) expect(ID.test(bad)).toBe(false);
});

test('a relative Patient reference gives its id; anything else gives none', () => {
  expect(relativePatientId('Patient/p-1')).toBe('p-1');
  expect(relativePatientId(`Patient/${'x'.repeat(64)}`)).toBe('x'.repeat(64));
  for (const other of ['Patient/', `Patient/${'x'.repeat(65)}`, 'Patient/p/_history/1', 'http://x/fhir/Patient/p', 'Group/p', 'p']) {
    expect(relativePatientId(other)).toBeUndefined();
  }
});
