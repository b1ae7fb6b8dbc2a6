/**
 * What `$aggregation-report` costs on a realistic feed (issue 15 item 7): loads the first N STU3 Synthea
 * bundles (default 40) into an STU3 endpoint of a fresh server on PostgreSQL, waits for the aggregation, then
 * times the report 20 times and prints its root causes.
 *
 *   DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres [SYNTHEA_STU3=dir] node scripts/run-ts.js bench/reportCost.ts [N]
 *
 * (through run-ts.js, which passes tsx the tools tsconfig: a bare `npx tsx` loads graphql-ws's ESM build
 * beside its CommonJS one and fails with "useServer is not a function")
 */
import path from 'node:path';
import { readdirSync } from 'node:fs';
import { AdminApi } from '../src/cli/adminApi';
import { runImport } from '../src/cli/importCommand';
import { formatReport } from '../src/cli/reportTable';
import type { AggregationReport } from '../src/aggregator/report';
import { startTestServer } from '../test/support/testServer';

async function main(): Promise<void> {
  const count = Number(process.argv[2] ?? 40);
  const dir = process.env.SYNTHEA_STU3 ?? path.resolve(__dirname, '../../shared/data/synthea-stu3');
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .slice(0, count)
    .map((f) => path.join(dir, f));
  const server = await startTestServer();
  try {
    const t = await server.provision({ fhirVersion: 'STU3' });
    const api = new AdminApi({ url: server.url, token: server.adminToken });
    const summary = await runImport(api, { endpoint: t.endpointId, paths: files });
    await server.admin('POST', '/admin/aggregation/wait?timeoutMs=600000');
    const times: number[] = [];
    let report: AggregationReport | undefined;
    for (let i = 0; i < 20; i++) {
      const started = process.hrtime.bigint();
      report = await server.admin<AggregationReport>('GET', `/admin/endpoints/${t.endpointId}/aggregation-report`);
      times.push(Number(process.hrtime.bigint() - started) / 1e6);
    }
    times.sort((a, b) => a - b);
    console.log(formatReport(report as AggregationReport));
    console.log(`${files.length} bundles, ${summary.loaded} resources loaded (${summary.rejected.length} rejected)`);
    console.log(`report over HTTP: p50 ${times[10].toFixed(1)} ms, max ${times[19].toFixed(1)} ms (20 calls)`);
  } finally {
    await server.close();
  }
}

void main();
