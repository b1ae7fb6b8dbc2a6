import { Aggregator } from '../../src/aggregator/aggregator';
import { createOutboxHook } from '../../src/aggregator/outbox';
import { MERGED_TYPES } from '../../src/aggregator/rules';
import { AggregationWorker } from '../../src/aggregator/worker';
import { createSearchIndexer } from '../../src/search/indexer';
import { ResourceRepository } from '../../src/store/resourceRepository';
import { TenancyRepository } from '../../src/store/tenancyRepository';
import { createTestDatabase, type TestDatabase } from '../support/testDatabase';

/**
 * Fair claiming (src/aggregator/claim.ts): one endpoint's bulk load does not hold back another endpoint's
 * single write, and a lane's merged types still come before its copies, in batches of their own.
 */
let t: TestDatabase;
let repo: ResourceRepository;
let bulk: string;
let single: string;

beforeAll(async () => {
  t = await createTestDatabase();
  repo = new ResourceRepository(t.db.sql, [createSearchIndexer(), createOutboxHook()]);
  const tenancy = new TenancyRepository(t.db.prisma);
  bulk = (await tenancy.createEndpoint({ customerId: (await tenancy.createCustomer({ name: 'bulk loader' })).id, fhirVersion: 'R4' })).id;
  single = (await tenancy.createEndpoint({ customerId: (await tenancy.createCustomer({ name: 'single writer' })).id, fhirVersion: 'R4' })).id;
});
afterAll(() => t.drop());

/** One transaction of the bulk endpoint, as a patient's bundle: its Patient and `observations` Observations. */
async function bundle(n: number, observations: number): Promise<void> {
  await repo.transaction(async (tx) => {
    await repo.update(bulk, { resourceType: 'Patient', id: `p${n}`, identifier: [{ system: 'urn:bulk', value: String(n) }] }, {}, tx);
    for (let i = 0; i < observations; i++) {
      await repo.update(bulk, { resourceType: 'Observation', id: `o${n}-${i}`, status: 'final', code: { text: 'bulk' }, subject: { reference: `Patient/p${n}` } } as never, {}, tx);
    }
  });
}

const queued = async (store: string): Promise<number> => {
  const [row] = await t.db.prisma.$queryRawUnsafe<{ n: bigint }[]>(`SELECT count(*) AS n FROM agg_outbox WHERE store = $1`, store);
  return Number(row.n);
};

test("another endpoint's single write is aggregated within the next batches, while a bulk load's lanes still wait", async () => {
  for (let n = 0; n < 8; n++) await bundle(n, 25);
  await repo.update(single, { resourceType: 'Observation', id: 'one', status: 'final', code: { text: 'single' } } as never);
  expect(await queued(bulk)).toBe(8 * 26);
  expect(await queued(single)).toBe(1);

  // Batches of 20: oldest first, the single write would wait behind all 208 items of the bulk load (11 batches).
  const batches: string[][] = [];
  let current: string[] = [];
  const worker = new AggregationWorker(t.db.sql, new Aggregator(repo), {
    batchSize: 20,
    afterItem: async (item) => void current.push(`${item.type}/${item.res_id}`),
  });
  for (let i = 0; i < 2 && (await queued(single)) > 0; i++) {
    current = [];
    await worker.runOnce();
    batches.push(current);
  }
  expect(await queued(single)).toBe(0);
  expect(await queued(bulk)).toBeGreaterThan(150);

  // The rest drains; no batch mixes merged types with copies, and each lane's Patient came before its Observations.
  for (let i = 0; i < 40 && (await queued(bulk)) > 0; i++) {
    current = [];
    await worker.runOnce();
    batches.push(current);
  }
  expect(await queued(bulk)).toBe(0);
  const batchOf = new Map<string, number>();
  batches.forEach((refs, i) => {
    const merged = refs.filter((ref) => ref.split('/')[0] in MERGED_TYPES);
    expect(merged.length === 0 || merged.length === refs.length).toBe(true);
    for (const ref of refs) batchOf.set(ref, i);
  });
  for (let n = 0; n < 8; n++) {
    for (let i = 0; i < 25; i++) expect(batchOf.get(`Observation/o${n}-${i}`)).toBeGreaterThan(batchOf.get(`Patient/p${n}`) ?? Infinity);
  }
});
