import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { parseStoredJson, stringifyFhirJson, stringifyStoredJson } from '../../src/fhir/losslessJson';
import { compactServedText } from '../../src/store/compactServedText';
import { servedOrder } from '../../src/store/resourceRepository';
import type { Resource } from '../../src/fhir/types';
import { createTestDatabase, type TestDatabase } from '../support/testDatabase';

/**
 * A key read serves PostgreSQL's text of the stored jsonb, compacted and reordered without parsing it
 * (store/compactServedText.ts). It must be byte for byte what parsing, reordering and serialising gave, so
 * every case here goes through the store's own jsonb (this test's database) and compares the two.
 */
let database: TestDatabase;

beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(async () => database?.drop());

/** Each value as the store keeps it, and PostgreSQL's text of that jsonb. */
async function storedTexts(values: unknown[]): Promise<string[]> {
  const rows = await database.db.sql.query<{ text: string }[]>(
    'SELECT x::jsonb::text AS text FROM unnest($1::text[]) WITH ORDINALITY AS t(x, n) ORDER BY n',
    values.map((v) => stringifyStoredJson(v)),
  );
  return rows.map((r) => r.text);
}

const parsedAndServed = (text: string) => stringifyFhirJson(servedOrder(parseStoredJson(text) as Resource));

const SYNTHEA = [path.resolve(__dirname, '../../../shared/data'), path.resolve(__dirname, '../../../../shared/data')].find((d) => existsSync(d));

test('every resource of Synthea bundles, R4 and STU3, is served exactly as parsing it would', async () => {
  if (!SYNTHEA) return; // the shared data is not part of the repository
  const resources: unknown[] = [];
  for (const version of ['synthea-r4', 'synthea-stu3']) {
    const dir = path.join(SYNTHEA, version);
    for (const file of readdirSync(dir).sort().slice(0, 4)) {
      const bundle = JSON.parse(readFileSync(path.join(dir, file), 'utf8')) as { entry: { resource: unknown }[] };
      for (const entry of bundle.entry) resources.push(entry.resource);
    }
  }
  expect(resources.length).toBeGreaterThan(1000);
  const texts = await storedTexts(resources);
  let compacted = 0;
  for (const text of texts) {
    const served = compactServedText(text);
    if (served !== undefined) compacted++;
    expect(served ?? parsedAndServed(text)).toBe(parsedAndServed(text));
  }
  expect(compacted).toBe(texts.length);
});

test('strings, numbers and nesting of every kind JSON allows come out as parsing would give them', async () => {
  // Element names as FHIR's are (never integer-like: a JavaScript object would move those keys first).
  const key = fc.stringMatching(/^[a-zA-Z][a-zA-Z0-9_ "\\:,{}[\]é\u2028]{0,8}$/);
  const decimal = fc
    .tuple(fc.integer({ min: -99999, max: 99999 }), fc.nat({ max: 99999 }), fc.integer({ min: 0, max: 3 }))
    .map(([whole, fraction, zeros]) => parseStoredJson(`${whole}.${fraction}${'0'.repeat(zeros)}`));
  const leaf = fc.oneof(
    fc.string({ unit: 'binary' }).map((s) => s.replaceAll('\u0000', '')),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    fc.integer(),
    decimal,
    fc.boolean(),
    fc.constant(null),
  );
  const value = fc.letrec((tie) => ({
    node: fc.oneof({ depthSize: 'small' }, leaf, fc.array(tie('node'), { maxLength: 4 }), fc.dictionary(key, tie('node'), { maxKeys: 5 })),
  })).node;
  const resource = fc
    .record(
      {
        resourceType: fc.constantFrom('Patient', 'Observation'),
        id: fc.stringMatching(/^[A-Za-z0-9\-.]{1,64}$/),
        meta: fc.dictionary(key, value, { maxKeys: 3 }),
        rest: fc.dictionary(key, value, { maxKeys: 8 }),
      },
      { requiredKeys: ['resourceType'] },
    )
    .map(({ rest, ...leading }) => ({ ...rest, ...leading }));
  const samples = fc.sample(resource, { numRuns: 400, seed: 19 });
  const texts = await storedTexts(samples);
  for (const text of texts) {
    const served = compactServedText(text);
    // Undefined only for numbers the store keeps marked (an exponent, -0), which are then parsed.
    if (served === undefined) expect(text).toContain('\uFDD0');
    else expect(served).toBe(parsedAndServed(text));
  }
});

test('what it does not handle it leaves to the parser', () => {
  for (const text of ['', '[]', '"x"', '{"a": 1} ', '{"a": 1}{', '{"a": {"b": 2}', '{"value": "\uFDD01e3"}']) expect(compactServedText(text)).toBeUndefined();
  expect(compactServedText('{}')).toBe('{}');
  expect(compactServedText('{"id": "a", "meta": {"versionId": "1"}, "gender": "female", "resourceType": "Patient"}')).toBe(
    '{"resourceType":"Patient","id":"a","meta":{"versionId":"1"},"gender":"female"}',
  );
});
