import { copyDayShift, copySyllable, scaledBundle, shiftDate } from '../../bench/lib/dataset';

/**
 * The bench's data scaler (issue 19 item 4): every scaled patient has its own names, identifiers and dates,
 * deterministically, so that search growth with the data is measured with real selectivity.
 */
const bundle = JSON.stringify({
  resourceType: 'Bundle',
  type: 'transaction',
  entry: [
    {
      fullUrl: 'urn:uuid:0b9f1c2d-1111-4222-8333-444455556666',
      resource: {
        resourceType: 'Patient',
        identifier: [{ system: 'https://github.com/synthetichealth/synthea', value: 'abc' }],
        name: [{ family: 'Hackett68', given: ['Alva958', 'Jo'] }],
        birthDate: '1970-03-01',
      },
      request: { method: 'POST', url: 'Patient' },
    },
    {
      resource: {
        resourceType: 'Encounter',
        subject: { reference: 'urn:uuid:0b9f1c2d-1111-4222-8333-444455556666' },
        period: { start: '2010-01-05T10:15:00+00:00', end: '2010-01-05T10:45:00+00:00' },
      },
      request: { method: 'POST', url: 'Encounter' },
    },
  ],
});
type Json = Record<string, any>;
const copy = (k: number) => JSON.parse(scaledBundle(bundle, k)) as Json;

test('copy 0 is the bundle unchanged; every copy is the same bytes each time', () => {
  expect(scaledBundle(bundle, 0)).toBe(bundle);
  expect(scaledBundle(bundle, 7)).toBe(scaledBundle(bundle, 7));
});

test('copies have distinct names that no prefix search for the original (or another copy) matches', () => {
  const names = [0, 1, 2, 85, 86, 4200].map((k) => copy(k).entry[0].resource.name[0]);
  const families = names.map((n) => n.family);
  expect(new Set(families).size).toBe(families.length);
  for (const f of families.slice(1)) expect(f.toLowerCase().startsWith('hackett')).toBe(false);
  expect(names[1]).toEqual({ family: 'Bahackett68', given: ['Baalva958', 'Bajo'] });
  const syllables = Array.from({ length: 5000 }, (_, i) => copySyllable(i + 1));
  expect(new Set(syllables).size).toBe(5000);
});

test('copies have distinct identifiers and references', () => {
  const one = copy(1);
  const two = copy(2);
  expect(one.entry[0].resource.identifier[0].value).not.toBe(two.entry[0].resource.identifier[0].value);
  expect(one.entry[0].fullUrl).not.toBe(two.entry[0].fullUrl);
  expect(one.entry[1].resource.subject.reference).toBe(one.entry[0].fullUrl);
});

test("every full date moves back by the copy's own shift, keeping the record's order, time and zone", () => {
  const shifts = Array.from({ length: 3650 }, (_, i) => copyDayShift(i + 1));
  expect(new Set(shifts).size).toBe(3650);
  expect(Math.min(...shifts)).toBeGreaterThan(0);
  const one = copy(1);
  const days = copyDayShift(1);
  expect(one.entry[0].resource.birthDate).toBe(shiftDate('1970-03-01', days));
  expect(one.entry[1].resource.period.start).toMatch(/T10:15:00\+00:00$/);
  expect(Date.parse(one.entry[1].resource.period.start)).toBe(Date.parse('2010-01-05T10:15:00+00:00') - days * 86_400_000);
  expect(shiftDate('2000-03-01', 1)).toBe('2000-02-29');
  expect(shiftDate('1970', 10)).toBe('1970');
  expect(shiftDate('not a date', 10)).toBe('not a date');
});
