import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ROOT, runAdminCli } from '../support/runCli';
import { startTestServer, type TestServer } from '../support/testServer';

const DATA = path.resolve(ROOT, '../shared/data');
const have = (dir: string) => {
  try {
    return readdirSync(path.join(DATA, dir)).length > 0;
  } catch {
    return false;
  }
};
const importCli = (server: TestServer, ...args: string[]) => runAdminCli(server, 'import', ...args);

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(() => server.close());

(have('synthea-r4') ? test : test.skip)(
  'three Synthea R4 bundles load completely; counts per type match what search finds',
  async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'import-r4-'));
    const files = readdirSync(path.join(DATA, 'synthea-r4'))
      .filter((f) => f.endsWith('.json'))
      .sort()
      .slice(0, 3);
    const expected: Record<string, number> = {};
    for (const f of files) {
      const text = readFileSync(path.join(DATA, 'synthea-r4', f), 'utf8');
      writeFileSync(path.join(dir, f), text);
      for (const e of JSON.parse(text).entry) expected[e.resource.resourceType] = (expected[e.resource.resourceType] ?? 0) + 1;
    }
    const tenant = await server.provision();
    const result = await importCli(server, '--endpoint', tenant.endpointId, dir);
    expect(result.code).toBe(0);
    const summary = JSON.parse(result.stdout);
    expect(summary.rejected).toEqual([]);
    expect(summary.files).toBe(3);
    expect(summary.byType).toEqual(expected);
    expect(summary.loaded).toBe(Object.values(expected).reduce((a, b) => a + b, 0));
    expect(result.stderr).toMatch(/files 3\/3 +resources \d+ +\d+\/s/);
    for (const [type, n] of Object.entries(expected)) {
      const bundle = (await (await tenant.fetch(`${type}?_total=accurate&_count=0`)).json()) as { total: number };
      expect([type, bundle.total]).toEqual([type, n]);
    }
  },
  180_000,
);

(have('synthea-stu3') ? test : test.skip)(
  'STU3 collection bundles load into an STU3 endpoint; invalid resources are rejected with their reason, the rest load',
  async () => {
    const tenant = await server.provision({ fhirVersion: 'STU3' });
    const files = ['Abshire_Cary_26.json', 'Abshire_Marylynn_9.json'].map((f) => path.join(DATA, 'synthea-stu3', f));
    const entries = files.reduce((n, f) => n + JSON.parse(readFileSync(f, 'utf8')).entry.length, 0);
    const result = await importCli(server, '--endpoint', tenant.endpointId, ...files);
    expect(result.code).toBe(0);
    const summary = JSON.parse(result.stdout);
    // Three Procedures with a single reasonReference (STU3 has a list) and a MedicationRequest allowing 0 repeats
    // (numberOfRepeatsAllowed is a positiveInt): invalid STU3, each refused with its reason.
    expect(
      summary.rejected.map((r: { resourceType: string; status: number; reason: string }) => [
        r.resourceType,
        r.status,
        /reasonReference|numberOfRepeatsAllowed: must be >= 1/.test(r.reason),
      ]),
    ).toEqual([
      ['Procedure', 400, true],
      ['Procedure', 400, true],
      ['Procedure', 400, true],
      ['MedicationRequest', 400, true],
    ]);
    expect(summary.loaded).toBe(entries - 4);
    const patients = (await (await tenant.fetch('Patient?_total=accurate&_count=0')).json()) as { total: number };
    expect(patients.total).toBe(2);
  },
  180_000,
);

test('rejected entries are reported at their place in the file, not in the shrinking retried Bundle', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'import-idx-'));
  const good = (n: number) => ({ resource: { resourceType: 'Patient', name: [{ family: `Good${n}` }] }, request: { method: 'POST', url: 'Patient' } });
  const bad = (n: number) => ({ resource: { resourceType: 'Patient', name: [{ family: `Bad${n}` }], gender: 'not-a-gender' }, request: { method: 'POST', url: 'Patient' } });
  writeFileSync(path.join(dir, 'b.json'), JSON.stringify({ resourceType: 'Bundle', type: 'transaction', entry: [good(0), bad(1), bad(2), good(3), bad(4), good(5)] }));
  const tenant = await server.provision();
  const result = await importCli(server, '--endpoint', tenant.endpointId, dir);
  expect(result.code).toBe(0);
  const summary = JSON.parse(result.stdout);
  expect(summary.rejected.map((r: { entry: number }) => r.entry)).toEqual([1, 2, 4]);
  expect(summary.loaded).toBe(3);
}, 60_000);

test('an unknown endpoint is an error naming it; a missing path is a clear error', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'import-x-'));
  writeFileSync(path.join(dir, 'p.json'), JSON.stringify({ resourceType: 'Patient' }));
  const unknown = await importCli(server, '--endpoint', 'ep-nope', dir);
  expect(unknown.code).toBe(1);
  expect(unknown.stderr).toContain('ep-nope');
  const missing = await importCli(server, '--endpoint', 'ep-nope', '/no/such/path');
  expect(missing.code).toBe(1);
  expect(missing.stderr).toContain('/no/such/path');
}, 60_000);
