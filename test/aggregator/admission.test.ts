import { startTestServer, type Tenant, type TestServer } from '../support/testServer';
import { BacklogAdmission } from '../../src/aggregator/admission';

/**
 * Backpressure: customer writes wait while the aggregation is behind, and are refused with 503 and
 * Retry-After when it stays behind. Here no worker runs, so the backlog only grows; a limit of three items
 * lets one bundle through, and single writes, which may use as much again above the limit (the headroom of
 * small writes), six.
 */
let server: TestServer;
let t: Tenant;

beforeAll(async () => {
  server = await startTestServer({ AGGREGATION_WORKER: 'off', AGGREGATION_MAX_BACKLOG: '3', AGGREGATION_ADMIT_WAIT_MS: '300' });
  t = await server.provision();
});
afterAll(() => server.close());

const patient = (n: number) => JSON.stringify({ resourceType: 'Patient', identifier: [{ system: 'urn:x', value: String(n) }] });

test('writes wait while the aggregation is behind, then get 503 with Retry-After; reads go on', async () => {
  for (let n = 0; n < 6; n++) expect((await t.fetch('Patient', { method: 'POST', body: patient(n) })).status).toBe(201);
  const started = Date.now();
  const refused = await t.fetch('Patient', { method: 'POST', body: patient(6) });
  expect(refused.status).toBe(503);
  expect(Date.now() - started).toBeGreaterThanOrEqual(250);
  expect(refused.headers.get('retry-after')).toMatch(/^\d+$/);
  const outcome = (await refused.json()) as { resourceType: string; issue: { code: string; diagnostics: string }[] };
  expect(outcome.resourceType).toBe('OperationOutcome');
  expect(outcome.issue[0]).toMatchObject({ code: 'throttled' });
  expect(outcome.issue[0].diagnostics).toMatch(/6 items behind \(limit 3\)/);
  const search = (await (await t.fetch('Patient')).json()) as { entry: unknown[] };
  expect(search.entry).toHaveLength(6);

  // Once the workers catch up, writes are admitted again.
  await server.database.db.sql.execute('DELETE FROM agg_outbox');
  await new Promise((r) => setTimeout(r, 100));
  expect((await t.fetch('Patient', { method: 'POST', body: patient(7) })).status).toBe(201);
});

/** A transaction Bundle of `size` new Patients (more than ten entries make a large write). */
const transaction = (size: number, first: number) =>
  JSON.stringify({
    resourceType: 'Bundle',
    type: 'transaction',
    entry: Array.from({ length: size }, (_, i) => ({
      fullUrl: `urn:uuid:00000000-0000-4000-8000-${String(first + i).padStart(12, '0')}`,
      resource: JSON.parse(patient(first + i)),
      request: { method: 'POST', url: 'Patient' },
    })),
  });

test('a transaction larger than the limit still goes through when nothing else is queued', async () => {
  await server.database.db.sql.execute('DELETE FROM agg_outbox');
  await new Promise((r) => setTimeout(r, 100));
  const res = await t.fetch('', { method: 'POST', body: transaction(12, 100) });
  expect(res.status).toBe(200);
});

describe('small writes beside bulk loads', () => {
  let bulkServer: TestServer;
  let writer: Tenant;
  beforeAll(async () => {
    bulkServer = await startTestServer({ AGGREGATION_WORKER: 'off', AGGREGATION_MAX_BACKLOG: '3', AGGREGATION_ADMIT_WAIT_MS: '60000' });
    writer = await bulkServer.provision();
  });
  afterAll(() => bulkServer.close());

  test('a single write is admitted while a large transaction waits for the aggregation to catch up', async () => {
    for (let n = 200; n < 203; n++) expect((await writer.fetch('Patient', { method: 'POST', body: patient(n) })).status).toBe(201);
    let settled = false;
    const bundle = writer.fetch('', { method: 'POST', body: transaction(12, 300) }).finally(() => (settled = true));
    expect((await writer.fetch('Patient', { method: 'POST', body: patient(203) })).status).toBe(201);
    expect(settled).toBe(false);
    // The workers catch up: the waiting transaction goes through.
    await bulkServer.database.db.sql.execute('DELETE FROM agg_outbox');
    expect((await bundle).status).toBe(200);
  });

  test('a single write is admitted while an oversized transaction is still queued', async () => {
    // The 12 items of the transaction above were let in over the limit of 3, and no worker takes them.
    expect(await queued()).toBe(12);
    expect((await writer.fetch('Patient', { method: 'POST', body: patient(204) })).status).toBe(201);
    expect(await queued()).toBe(13);
  });

  const queued = async () => {
    const [row] = await bulkServer.database.db.sql.query<{ n: bigint }[]>('SELECT count(*) AS n FROM agg_outbox');
    return Number(row.n);
  };
});

describe('waking', () => {
  /** A backlog the test sets by hand, read by the admission as the outbox count. */
  const backlog = (depth: { n: number }) => ({ query: async () => [{ n: BigInt(depth.n) }] as never, execute: async () => 0 });

  test('a waiting writer is admitted as soon as the worker nudges, not at its next poll', async () => {
    const depth = { n: 10 };
    const admission = new BacklogAdmission(backlog(depth), { maxBacklog: 10, headroom: 0, maxWaitMs: 60_000, refreshMs: 60_000 });
    let admitted = false;
    const waiting = admission.admit(1).then((release) => {
      admitted = true;
      return release;
    });
    await new Promise((r) => setTimeout(r, 50));
    expect(admitted).toBe(false);
    depth.n = 0;
    admission.nudge();
    (await waiting)();
    expect(admitted).toBe(true);
  });

  test('finishing an admitted write tells the worker its items are queued', async () => {
    let told = 0;
    const admission = new BacklogAdmission(backlog({ n: 0 }), { maxBacklog: 10, maxWaitMs: 1000, onReleased: () => told++ });
    const release = await admission.admit(3);
    expect(told).toBe(0);
    release();
    release();
    expect(told).toBe(1);
  });
});
