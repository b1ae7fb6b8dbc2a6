import { normalizeString, parseReference, tokenValues } from '../../src/search/indexValues';

/**
 * The index values' fast paths (search/indexValues.ts) give what the general ones give: the ASCII path of
 * `normalizeString`, the two-segment read of `parseReference`, and token rows without their text.
 */
const general = (s: string) =>
  s
    .normalize('NFD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .slice(0, 512);

test('normalizeString gives the Unicode normalisation’s result for ASCII, accented, control and long text', () => {
  const texts = ['Smith', 'O’Brien', 'Zoë Åsa', 'CAFÉ', 'tab\tand\nline', 'nul\u0001x', 'x'.repeat(600), 'É'.repeat(600), '', 'ﬁ ligature', 'İstanbul'];
  for (const text of texts) expect({ text, normal: normalizeString(text) }).toEqual({ text, normal: general(text) });
});

/** parseReference as it was written before its fast path: split on every slash. */
function splitReference(reference: string) {
  const parts = reference.split('/');
  let i = parts.length - 2;
  if (parts.length >= 4 && parts[parts.length - 2] === '_history') i = parts.length - 4;
  if (i >= 0 && /^[A-Z][A-Za-z]+$/.test(parts[i]) && /^[A-Za-z0-9\-.]{1,64}$/.test(parts[i + 1]) && !reference.startsWith('urn:')) {
    return { targetType: parts[i], targetId: parts[i + 1], url: null };
  }
  return { targetType: null, targetId: null, url: reference };
}

test('parseReference reads every kind of reference as splitting it on each slash does', () => {
  const references = [
    'Patient/1',
    'Patient/a.b-c',
    'http://x/fhir/Patient/1',
    'Patient/1/_history/2',
    'http://x/fhir/Patient/1/_history/2',
    '_history/2',
    'x/_history/2',
    'urn:uuid:018f428e-34f6-4707-8009-5ad742f901e7',
    'urn:x/Patient/1',
    '/Patient',
    'Patient/',
    '/',
    '//',
    'patient/1',
    'Patient/1 2',
    `Patient/${'a'.repeat(65)}`,
    '#contained',
    'Patient',
    'P/1',
  ];
  for (const reference of references) expect({ reference, parsed: parseReference(reference) }).toEqual({ reference, parsed: splitReference(reference) });
});

test('token rows without text keep every row with a code, in order', () => {
  const concept = { coding: [{ system: 's', code: 'a', display: 'Ä' }, { code: 'b' }, { system: 's', display: 'no code' }], text: 'Text' };
  const withCode = (rows: ReturnType<typeof tokenValues>) => rows.filter((t) => t.code !== null).map(({ system, code }) => ({ system, code }));
  for (const value of [concept, { system: 's', code: 'c', display: 'x' }, { system: 'i', value: 'v', type: { text: 'T' } }, 'plain', 7, { text: 'only text' }]) {
    expect(withCode(tokenValues(value, false))).toEqual(withCode(tokenValues(value)));
    expect(tokenValues(value, false).every((t) => t.text === null)).toBe(true);
  }
});
