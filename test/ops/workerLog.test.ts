import { Aggregator } from '../../src/aggregator/aggregator';
import { createOutboxHook } from '../../src/aggregator/outbox';
import { AggregationWorker } from '../../src/aggregator/worker';
import { createLogger, logFailedItem } from '../../src/ops/logger';
import { createSearchIndexer } from '../../src/search/indexer';
import { ResourceRepository } from '../../src/store/resourceRepository';
import { TenancyRepository } from '../../src/store/tenancyRepository';
import { createTestDatabase, type TestDatabase } from '../support/testDatabase';

/** The worker process's log: JSON lines like the server's, one per failed work item, naming the item and its resource. */
let t: TestDatabase;
afterAll(() => t?.drop());

test('a failing work item is logged with its id and resource, as a warning, then as an error once parked', async () => {
  t = await createTestDatabase();
  const repo = new ResourceRepository(t.db.sql, [createSearchIndexer(), createOutboxHook()]);
  const tenancy = new TenancyRepository(t.db.prisma);
  const customer = await tenancy.createCustomer({ name: 'c' });
  const endpoint = (await tenancy.createEndpoint({ customerId: customer.id, fhirVersion: 'R4' })).id;
  await repo.update(endpoint, { resourceType: 'Patient', id: 'p-log', identifier: [{ system: 's', value: '1' }] });
  const [{ id: workItemId }] = await t.db.sql.query<{ id: bigint }[]>(`SELECT id FROM agg_outbox`);

  const lines: Record<string, unknown>[] = [];
  const log = createLogger('info', { component: 'aggregation-worker' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  class Broken extends Aggregator {
    override async process(): Promise<void> {
      throw new Error('upstream unreadable');
    }
  }
  const worker = new AggregationWorker(t.db.sql, new Broken(repo), { maxAttempts: 2, onItemFailed: (failure) => logFailedItem(log, failure) });
  await worker.runOnce();
  await t.db.sql.execute(`UPDATE agg_outbox SET available_at = clock_timestamp()`);
  await worker.runOnce();

  const item = { workItemId: String(workItemId), store: endpoint, type: 'Patient', resourceId: 'p-log', error: 'upstream unreadable', component: 'aggregation-worker' };
  expect(lines).toEqual([
    expect.objectContaining({ ...item, level: 40, attempts: 1, parked: false, msg: 'aggregation work item failed; it will be retried', pid: process.pid }),
    expect.objectContaining({ ...item, level: 50, attempts: 2, parked: true, msg: 'aggregation work item parked after repeated failures' }),
  ]);
  expect(typeof lines[0].time).toBe('number');
});
