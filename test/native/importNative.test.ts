import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { csvRecords } from '../../src/cli/nativeImportSource';
import { runAdminCli } from '../support/runCli';
import { startTestServer, type Tenant, type TestServer } from '../support/testServer';

/**
 * `npm run admin -- import-native --organization ORG FILE` (issue 14 item 4): CSV or NDJSON timeline entries
 * into an organisation's native record, with progress on stderr and a summary on stdout; a bad line is
 * reported with its line number and reason and the others load.
 */
type Json = Record<string, any>;
let server: TestServer;
let tenant: Tenant;
let organizationId: string;
let patientId: string;
const dir = mkdtempSync(path.join(tmpdir(), 'import-native-'));

beforeAll(async () => {
  server = await startTestServer();
  tenant = await server.provision();
  organizationId = (await server.admin<Json>('GET', '/admin/customers')).customers.find((c: Json) => c.id === tenant.customerId).defaultOrganizationId;
  const res = await fetch(`${server.url}/graphql`, {
    method: 'POST',
    headers: { authorization: `Bearer ${tenant.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ query: 'mutation { nativeSavePatient(input: { nhsNumber: "9449305552", family: "Smith", given: ["Ann"] }) { id } }' }),
  });
  patientId = ((await res.json()) as Json).data.nativeSavePatient.id;
}, 120_000);
afterAll(() => server.close());

async function timeline(): Promise<Json[]> {
  const res = await fetch(`${server.url}/graphql`, {
    method: 'POST',
    headers: { authorization: `Bearer ${tenant.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ query: 'query T($p: ID!) { nativeTimeline(patientId: $p) { kind value title text } }', variables: { p: patientId } }),
  });
  return ((await res.json()) as Json).data.nativeTimeline;
}

test('CSV rows load into the native record; a bad row is reported by line and reason; quoted fields keep commas and line breaks', async () => {
  const file = path.join(dir, 'entries.csv');
  writeFileSync(
    file,
    [
      'nhsNumber,kind,occurredAt,title,text,codeSystem,code,value,unit',
      '944 930 5552,measurement,2026-11-01T08:00:00Z,HbA1c,,LOINC,4548-4,7.10,%',
      '9449305552,note,2026-11-02,"Visit, routine","Seen today.\nAll well.",,,,',
      '9449305552,measurement,2026-11-03,Weight,,LOINC,29463-7,heavy,kg',
      '9000000009,note,2026-11-04,,Unknown patient,,,,',
      '9449305552,appointment,2026-12-01T09:00:00Z,Review,,,,,',
    ].join('\n'),
  );
  const result = await runAdminCli(server, 'import-native', '--organization', organizationId, file);
  expect(result.code).toBe(0);
  const summary = JSON.parse(result.stdout);
  expect(summary).toMatchObject({ organization: organizationId, lines: 5, loaded: 3, byKind: { measurement: 1, note: 1, appointment: 1 } });
  expect(summary.rejected).toEqual([
    { line: 5, reason: expect.stringMatching(/^value: .*decimal/) },
    { line: 6, reason: expect.stringMatching(/^nhsNumber: No patient with NHS number '9000000009'/) },
  ]);
  expect(result.stderr).toMatch(/entries 5\/5 +loaded 3/);
  const entries = await timeline();
  expect(entries).toContainEqual({ kind: 'measurement', value: '7.10', title: 'HbA1c', text: null });
  expect(entries).toContainEqual({ kind: 'note', value: null, title: 'Visit, routine', text: 'Seen today.\nAll well.' });
});

test('NDJSON lines load the same way; a line that is not JSON is reported', async () => {
  const file = path.join(dir, 'entries.ndjson');
  writeFileSync(
    file,
    [
      JSON.stringify({ patientId, kind: 'measurement', occurredAt: '2026-11-05', codeSystem: 'SNOMED', code: '27113001', value: '70.25', unit: 'kg' }),
      '{not json',
      JSON.stringify({ patientId, kind: 'note', occurredAt: '2026-11-06', text: 'From the old system' }),
    ].join('\n'),
  );
  const result = await runAdminCli(server, 'import-native', '--organization', organizationId, file);
  expect(result.code).toBe(0);
  const summary = JSON.parse(result.stdout);
  expect(summary).toMatchObject({ lines: 3, loaded: 2, rejected: [{ line: 2, reason: 'not JSON' }] });
  expect(await timeline()).toContainEqual({ kind: 'measurement', value: '70.25', title: null, text: null });
});

test('a CSV with an unknown column is refused as a whole, naming it', async () => {
  const file = path.join(dir, 'bad.csv');
  writeFileSync(file, 'nhsNumber,kind,when\n9449305552,note,2026-11-01\n');
  const result = await runAdminCli(server, 'import-native', '--organization', organizationId, file);
  expect(result.code).not.toBe(0);
  expect(result.stderr).toContain('unknown column when');
});

test('the CSV reader follows RFC 4180 quoting', () => {
  expect(csvRecords('a,b\r\n"x,1","say ""hi"""\n\n"multi\nline",\n')).toEqual([
    { line: 1, fields: ['a', 'b'] },
    { line: 2, fields: ['x,1', 'say "hi"'] },
    { line: 4, fields: ['multi\nline', ''] },
  ]);
});
