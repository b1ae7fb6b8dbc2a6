import { Aggregator } from '../../src/aggregator/aggregator';
import { createOutboxHook } from '../../src/aggregator/outbox';
import { AggregationWorker } from '../../src/aggregator/worker';
import { createSearchIndexer } from '../../src/search/indexer';
import { ResourceRepository } from '../../src/store/resourceRepository';
import { TenancyRepository } from '../../src/store/tenancyRepository';
import { createTestDatabase, type TestDatabase } from '../support/testDatabase';

/** The durable pipeline: a worker that dies mid-item loses nothing, and failures are retried then parked. */
let t: TestDatabase;
let repo: ResourceRepository;
let endpoint: string;

beforeAll(async () => {
  t = await createTestDatabase();
  repo = new ResourceRepository(t.db.sql, [createSearchIndexer(), createOutboxHook()]);
  const tenancy = new TenancyRepository(t.db.prisma);
  const customer = await tenancy.createCustomer({ name: 'c' });
  endpoint = (await tenancy.createEndpoint({ customerId: customer.id, fhirVersion: 'R4' })).id;
});
afterAll(() => t.drop());

async function outbox(): Promise<{ n: number; parked: number }> {
  const [row] = await t.db.prisma.$queryRawUnsafe<{ n: bigint; parked: bigint }[]>(`SELECT count(*) AS n, count(*) FILTER (WHERE parked) AS parked FROM agg_outbox`);
  return { n: Number(row.n), parked: Number(row.parked) };
}

test('a write and its work item commit together', async () => {
  await expect(
    repo.transaction(async (tx) => {
      await repo.update(endpoint, { resourceType: 'Patient', id: 'rolled-back', identifier: [{ system: 's', value: 'x' }] }, {}, tx);
      throw new Error('abort');
    }),
  ).rejects.toThrow('abort');
  expect((await outbox()).n).toBe(0);
});

test('a worker that dies mid-item leaves the item for another worker, which finishes it', async () => {
  await repo.update(endpoint, { resourceType: 'Patient', id: 'p1', identifier: [{ system: 'https://fhir.nhs.uk/Id/nhs-number', value: '1' }] });
  expect((await outbox()).n).toBe(1);
  const aggregator = new Aggregator(repo);
  // The first worker "crashes" after doing the work but before its transaction commits.
  const crashing = new AggregationWorker(t.db.sql, aggregator, {
    afterItem: async () => {
      throw Object.assign(new Error('worker killed'), { crash: true });
    },
  });
  await expect(crashing.runOnce()).rejects.toThrow('worker killed');
  expect((await outbox()).n).toBe(1);
  expect(await repo.find('aggregated', 'Patient', 'anything')).toBeUndefined();
  const [{ n: before }] = await t.db.prisma.$queryRawUnsafe<{ n: bigint }[]>(`SELECT count(*) AS n FROM resource WHERE store = 'aggregated'`);
  expect(Number(before)).toBe(0);

  const healthy = new AggregationWorker(t.db.sql, aggregator);
  expect(await healthy.runOnce()).toBe(1);
  expect((await outbox()).n).toBe(0);
  const rows = await t.db.prisma.$queryRawUnsafe<{ content: { identifier: unknown } }[]>(`SELECT content FROM resource WHERE store = 'aggregated' AND type = 'Patient'`);
  expect(rows).toHaveLength(1);
  expect(rows[0].content.identifier).toEqual([{ system: 'https://fhir.nhs.uk/Id/nhs-number', value: '1' }]);
});

test('an item that keeps failing is retried with back-off, then parked with its error', async () => {
  await repo.update(endpoint, { resourceType: 'Patient', id: 'p2', identifier: [{ system: 's', value: '2' }] });
  class Broken extends Aggregator {
    override async process(): Promise<void> {
      throw new Error('transient failure');
    }
  }
  const broken = new Broken(repo);
  const worker = new AggregationWorker(t.db.sql, broken, { maxAttempts: 2 });
  await worker.runOnce();
  const [first] = await t.db.prisma.$queryRawUnsafe<{ attempts: number; parked: boolean; last_error: string; wait: number }[]>(
    `SELECT attempts, parked, last_error, EXTRACT(EPOCH FROM available_at - clock_timestamp()) AS wait FROM agg_outbox`,
  );
  expect(first).toMatchObject({ attempts: 1, parked: false });
  expect(first.last_error).toContain('transient failure');
  expect(Number(first.wait)).toBeGreaterThan(0);
  await t.db.prisma.$executeRawUnsafe(`UPDATE agg_outbox SET available_at = clock_timestamp()`);
  await worker.runOnce();
  expect(await outbox()).toEqual({ n: 1, parked: 1 });
  expect((await worker.lag()).parked).toBe(1);
});

/**
 * A batch reads each copy's aggregated state with its upstream row (upstream.ts `withPrevious`). Resolving the
 * batch's references can aggregate one of the batch's own resources first (the Observation's Encounter is not
 * aggregated yet; aggregating it aggregates its reason, the Condition, which is in the batch): the Condition's
 * state read with the batch is then out of date, and writing from it would give the Condition a second copy
 * (or fail on its member row). It is read again.
 */
test('a batch resource aggregated first as the target of a target keeps its one copy', async () => {
  const tenancy = new TenancyRepository(t.db.prisma);
  const customer = await tenancy.createCustomer({ name: 'chain' });
  const store = (await tenancy.createEndpoint({ customerId: customer.id, fhirVersion: 'R4', defaultSourceOrg: 'Organization/src' })).id;
  await repo.update(store, { resourceType: 'Organization', id: 'src', identifier: [{ system: 'https://fhir.nhs.uk/Id/ods-organization-code', value: 'SRC1' }] });
  await repo.update(store, { resourceType: 'Patient', id: 'pc', identifier: [{ system: 'https://fhir.nhs.uk/Id/nhs-number', value: '9000000099' }] });
  const aggregator = new Aggregator(repo);
  await new AggregationWorker(t.db.sql, aggregator).waitForIdle();
  await repo.update(store, {
    resourceType: 'Encounter',
    id: 'e',
    status: 'finished',
    class: { code: 'AMB' },
    subject: { reference: 'Patient/pc' },
    reasonReference: [{ reference: 'Condition/c' }],
  } as never);
  await repo.update(store, { resourceType: 'Condition', id: 'c', subject: { reference: 'Patient/pc' } } as never);
  await repo.update(store, {
    resourceType: 'Observation',
    id: 'o',
    status: 'final',
    code: { text: 'x' },
    subject: { reference: 'Patient/pc' },
    encounter: { reference: 'Encounter/e' },
  } as never);

  // The Observation and the Condition as one batch, as the worker loads and copies it; the Encounter outside it.
  await t.db.sql.transaction(async (tx) => {
    const batch = await aggregator.loadCopied(tx, [
      { store, type: 'Observation', id: 'o' },
      { store, type: 'Condition', id: 'c' },
    ]);
    expect([...batch.values()].map((u) => u.previous)).toEqual([null, null]);
    expect(await aggregator.begin().copyMany(tx, [...batch.values()])).toEqual([]);
  });

  const copies = await t.db.prisma.$queryRawUnsafe<{ type: string; n: bigint }[]>(
    `SELECT r.type, count(*) AS n FROM agg_member m JOIN resource r ON r.store = 'aggregated' AND r.type = m.type AND r.id = m.agg_id
      WHERE m.store = $1 AND m.status = 'included' GROUP BY r.type ORDER BY r.type`,
    store,
  );
  expect(copies.map((c) => [c.type, Number(c.n)])).toEqual([
    ['Condition', 1],
    ['Encounter', 1],
    ['Observation', 1],
    ['Organization', 1],
    ['Patient', 1],
  ]);
  const [{ n }] = await t.db.prisma.$queryRawUnsafe<{ n: bigint }[]>(`SELECT count(*) AS n FROM resource WHERE store = 'aggregated' AND type = 'Condition'`);
  expect(Number(n)).toBe(1);
});
