import { runFuzz, type FuzzTarget } from './fuzzHarness';
import { startTestServer, type TestServer } from '../support/testServer';

/**
 * The seeded slice of the fuzzer (issue 16 item 10) that runs with `npm test`: a few hundred requests of every
 * family, never a 5xx, never a crash, and no stored data changed by a refused one. `npm run fuzz` runs the
 * same properties over ≥ 10,000 cases.
 */
let server: TestServer;
let target: FuzzTarget;

beforeAll(async () => {
  server = await startTestServer();
  const tenant = await server.provision();
  const res = await tenant.fetch('Patient/p1', { method: 'PUT', body: JSON.stringify({ resourceType: 'Patient', id: 'p1', name: [{ family: 'Fuzz' }] }) });
  expect(res.status).toBe(201);
  target = { server, tenant, knownId: 'p1' };
});
afterAll(() => server.close());

test('300 seeded hostile requests: no 5xx, no crash, refused requests change nothing', async () => {
  const report = await runFuzz(target, { numRuns: 300, seed: 16_2026 });
  expect(report.counterexample).toBeUndefined();
  expect(report.failures).toBe(0);
  expect(report.cases).toBe(300);
  // The server still answers.
  expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
}, 600_000);
