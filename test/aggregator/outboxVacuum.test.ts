import { Aggregator } from '../../src/aggregator/aggregator';
import { createOutboxHook } from '../../src/aggregator/outbox';
import { AggregationWorker } from '../../src/aggregator/worker';
import { createSearchIndexer } from '../../src/search/indexer';
import { ResourceRepository } from '../../src/store/resourceRepository';
import { createTestDatabase, type TestDatabase } from '../support/testDatabase';

/**
 * The outbox stays cheap to read however many items have gone through it (src/aggregator/outboxVacuum.ts). Every
 * processed item is deleted; without a vacuum its dead entry stays in the outbox's indexes and table, and finding
 * the oldest ready item — what every claim does, several times a second — steps over all of them. Autovacuum is
 * turned off for the outbox here, as it is on a server where it is off or behind, so only the worker's own vacuum
 * can keep the read short. The pages a read touches are what EXPLAIN (BUFFERS) counts.
 */
let t: TestDatabase;
let repo: ResourceRepository;

beforeAll(async () => {
  t = await createTestDatabase();
  repo = new ResourceRepository(t.db.sql, [createSearchIndexer(), createOutboxHook()]);
  await t.db.sql.execute('ALTER TABLE agg_outbox SET (autovacuum_enabled = false)');
});
afterAll(() => t.drop());

/** Items put through the worker, and how many it deletes between two vacuums. */
/** Items put through the worker per round, and how many it deletes between two vacuums. */
const ITEMS = 400;
const EVERY = 250;

/** Enqueues ITEMS work items (resources that are not there: each is a no-op deletion) and lets `worker` drain them. */
async function drain(worker: AggregationWorker): Promise<void> {
  await t.db.sql.execute(`INSERT INTO agg_outbox (store, type, res_id, lane) SELECT 'nowhere', 'Observation', 'gone-' || g, g % 10 FROM generate_series(1, $1::int) g`, ITEMS);
  for (let i = 0; i < ITEMS; i++) if ((await worker.runOnce()) === 0) break;
  const [{ n }] = await t.db.sql.query<{ n: bigint }[]>('SELECT count(*) AS n FROM agg_outbox');
  expect(Number(n)).toBe(0);
}

/**
 * Pages read to find the oldest ready item (the claim's first step) and to count the queue (outboxLag), with one
 * item waiting, as in a running queue: the reads must find it without stepping over what went before.
 */
async function pagesRead(): Promise<number> {
  await t.db.sql.execute(`INSERT INTO agg_outbox (store, type, res_id) VALUES ('nowhere', 'Observation', 'waiting')`);
  const buffers = async (sql: string) => {
    const [row] = await t.db.sql.query<{ 'QUERY PLAN': unknown }[]>(`EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ${sql}`);
    const plan = row['QUERY PLAN'];
    const top = (typeof plan === 'string' ? JSON.parse(plan) : plan) as { Plan: { 'Shared Hit Blocks': number; 'Shared Read Blocks': number } }[];
    return top[0].Plan['Shared Hit Blocks'] + top[0].Plan['Shared Read Blocks'];
  };
  const pages = (await buffers('SELECT id FROM agg_outbox WHERE NOT parked ORDER BY id LIMIT 1')) + (await buffers('SELECT count(*) FROM agg_outbox'));
  await t.db.sql.execute(`DELETE FROM agg_outbox WHERE res_id = 'waiting'`);
  return pages;
}

/** The pages read after one round of ITEMS and after three. */
async function growth(vacuumEvery: number): Promise<[number, number]> {
  const worker = new AggregationWorker(t.db.sql, new Aggregator(repo), { batchSize: 100, vacuumEvery });
  await drain(worker);
  const first = await pagesRead();
  await drain(worker);
  await drain(worker);
  return [first, await pagesRead()];
}

test('the reads of the outbox do not grow with the items processed: the worker vacuums it', async () => {
  const [first, third] = await growth(EVERY);
  // Bounded by what fewer than EVERY dead items leave, however many went through.
  expect(third).toBeLessThanOrEqual(first + 2);
  await t.db.sql.execute('VACUUM agg_outbox');
});

test('without the vacuum the same reads grow with every item processed (the control)', async () => {
  const [first, third] = await growth(Infinity);
  expect(third).toBeGreaterThan(first * 2);
});
