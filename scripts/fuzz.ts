/**
 * `npm run fuzz` (issue 16 item 10): the property-based fuzzer over ≥ 10,000 seeded cases against a real
 * server on a fresh database (PostgreSQL when DATABASE_URL names one, else the embedded store). Prints the
 * cases tried, the answers by status class and the failures; exits 1 on a failure, with its shrunk example.
 *
 *   DATABASE_URL=postgresql://… npm run fuzz -- [cases] [seed]
 */
import { runFuzz } from '../test/reliability/fuzzHarness';
import { startTestServer } from '../test/support/testServer';

async function main(): Promise<void> {
  const numRuns = Number(process.argv[2] ?? 10_000);
  const seed = Number(process.argv[3] ?? 16_2026);
  const server = await startTestServer();
  try {
    const tenant = await server.provision();
    await tenant.fetch('Patient/p1', { method: 'PUT', body: JSON.stringify({ resourceType: 'Patient', id: 'p1', name: [{ family: 'Fuzz' }] }) });
    const started = Date.now();
    const report = await runFuzz(
      { server, tenant, knownId: 'p1' },
      { numRuns, seed, onProgress: (n) => n % 1000 === 0 && process.stderr.write(`${n} cases (${Math.round((Date.now() - started) / 1000)} s)\n`) },
    );
    const alive = (await fetch(`${server.url}/healthz`)).status === 200;
    console.log(
      JSON.stringify({ store: server.database.url ? 'postgres' : 'pglite', seed, ...report, serverAliveAfter: alive, seconds: Math.round((Date.now() - started) / 1000) }, null, 2),
    );
    if (report.failures || !alive) process.exitCode = 1;
  } finally {
    await server.close();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
