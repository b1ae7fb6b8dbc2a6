import { Aggregator } from '../../src/aggregator/aggregator';
import { createOutboxHook } from '../../src/aggregator/outbox';
import { createRecordChangeHook } from '../../src/aggregator/recordChanges';
import { AggregationWorker, type OutboxItem, type WorkerOptions } from '../../src/aggregator/worker';
import { createSearchIndexer } from '../../src/search/indexer';
import { ResourceRepository } from '../../src/store/resourceRepository';
import { TenancyRepository } from '../../src/store/tenancyRepository';
import { createTestDatabase, type TestDatabase } from '../support/testDatabase';

/**
 * Issue 19 (1): the aggregated record's change log (src/aggregator/recordChanges.ts) is written at the end of a
 * worker's batch, just before it commits, so that its lock does not hold the other aggregation loops off for
 * the whole batch. What must still hold: a change whose item was rolled back is never logged, every version
 * written to the aggregated store is logged once, and positions follow commit order.
 */
const NHS = 'https://fhir.nhs.uk/Id/nhs-number';
const LOCK = `hashtextextended('agg_change', 0)`;

let t: TestDatabase;
let repo: ResourceRepository;
let aggregator: Aggregator;
let endpoint: string;
/** Overlapping transactions need PostgreSQL: PGlite is one connection (as testDatabase.ts decides). */
const postgresTest = /^postgres(ql)?:\/\//.test(process.env.DATABASE_URL ?? '') ? test : test.skip;

beforeAll(async () => {
  t = await createTestDatabase();
  repo = new ResourceRepository(t.db.sql, [createSearchIndexer(), createOutboxHook(), createRecordChangeHook()]);
  aggregator = new Aggregator(repo);
  const tenancy = new TenancyRepository(t.db.prisma);
  const customer = await tenancy.createCustomer({ name: 'c' });
  endpoint = (await tenancy.createEndpoint({ customerId: customer.id, fhirVersion: 'R4', defaultSourceOrg: 'Organization/src' })).id;
  // The endpoint's source organisation, with an identifier: without it the endpoint's copies are excluded.
  await repo.update(endpoint, { resourceType: 'Organization', id: 'src', identifier: [{ system: 'https://fhir.nhs.uk/Id/ods-organization-code', value: 'SRC1' }] });
  await patient('ok', '9000000001');
  await new AggregationWorker(t.db.sql, aggregator).waitForIdle();
}, 60_000);
afterAll(() => t.drop());

function patient(id: string, nhs: string) {
  return repo.update(endpoint, { resourceType: 'Patient', id, identifier: [{ system: NHS, value: nhs }] });
}

/** An Observation of the aggregated Patient 'ok', in a transaction (so a lane) of its own; its code's text is its id. */
function observation(id: string) {
  return repo.update(endpoint, { resourceType: 'Observation', id, status: 'final', code: { text: id }, subject: { reference: 'Patient/ok' } } as never);
}

interface Logged {
  seq: bigint;
  ref: string;
}

/** The change log, in position order, as `type/id/version`. */
async function logged(): Promise<Logged[]> {
  const rows = await t.db.sql.query<{ seq: bigint; type: string; res_id: string; version_id: number }[]>(`SELECT seq, type, res_id, version_id FROM agg_change ORDER BY seq`);
  return rows.map((r) => ({ seq: BigInt(r.seq), ref: `${r.type}/${r.res_id}/${r.version_id}` }));
}

/** Every version in the aggregated store, current and superseded, as `type/id/version`. */
async function versions(): Promise<string[]> {
  const rows = await t.db.sql.query<{ ref: string }[]>(
    `SELECT type || '/' || id || '/' || version_id AS ref FROM resource WHERE store = 'aggregated'
     UNION ALL
     SELECT type || '/' || id || '/' || version_id FROM resource_history WHERE store = 'aggregated'`,
  );
  return rows.map((r) => r.ref).sort();
}

/** The aggregated Patient with this NHS number. */
async function aggregatedPatient(nhs: string): Promise<string | undefined> {
  const rows = await t.db.sql.query<{ id: string }[]>(
    `SELECT id FROM resource WHERE store = 'aggregated' AND type = 'Patient' AND NOT deleted AND content->'identifier' @> $1::jsonb`,
    JSON.stringify([{ system: NHS, value: nhs }]),
  );
  return rows[0]?.id;
}

/** The aggregated copy of the Observation `id` (see `observation`). */
async function aggregatedObservation(id: string): Promise<string | undefined> {
  const rows = await t.db.sql.query<{ id: string }[]>(
    `SELECT id FROM resource WHERE store = 'aggregated' AND type = 'Observation' AND NOT deleted AND content->'code'->>'text' = $1`,
    id,
  );
  return rows[0]?.id;
}

const readyAgain = () => t.db.sql.execute(`UPDATE agg_outbox SET available_at = clock_timestamp()`);

/** Whether another session could take the change log's lock right now (it lets go of it at once). */
const lockFree = () => t.db.sql.transaction(async (tx) => (await tx.query<{ ok: boolean }[]>(`SELECT pg_try_advisory_xact_lock(${LOCK}) AS ok`))[0].ok);

test('the change of an item rolled back after it wrote its version is never logged; once it succeeds, it is', async () => {
  await patient('bad', '9000000002');
  const refuse = (id: string) => async (item: OutboxItem) => {
    if (item.res_id === id) throw new Error('refused after writing');
  };
  const before = await logged();
  // A Patient goes alone under its savepoint (agg_item).
  await new AggregationWorker(t.db.sql, aggregator, { afterItem: refuse('bad') }).runOnce();
  expect(await aggregatedPatient('9000000002')).toBeUndefined();
  expect(await logged()).toEqual(before);
  expect(before.map((l) => l.ref).sort()).toEqual(await versions());

  // Observations go set-wise under one savepoint (agg_set): one refusal rolls back the set, then each goes alone.
  await observation('o-ok');
  await observation('o-bad');
  const statements: string[] = [];
  t.db.sql.onQuery((sql) => void statements.push(sql));
  await new AggregationWorker(t.db.sql, aggregator, { afterItem: refuse('o-bad') }).runOnce();
  // The set-wise attempt had copied o-ok too when it was rolled back: o-ok was copied twice, and is logged once.
  expect(statements).toContain('ROLLBACK TO SAVEPOINT agg_set');
  const afterFailures = await logged();
  expect(afterFailures.map((l) => l.ref).sort()).toEqual(await versions());
  expect(afterFailures.slice(before.length).map((l) => l.ref)).toEqual([`Observation/${await aggregatedObservation('o-ok')}/1`]);

  await readyAgain();
  await new AggregationWorker(t.db.sql, aggregator).waitForIdle();
  const all = await logged();
  expect(all.map((l) => l.ref).sort()).toEqual(await versions());
  expect(all.slice(0, afterFailures.length)).toEqual(afterFailures);
  expect(all.map((l) => l.ref)).toEqual(expect.arrayContaining([`Patient/${await aggregatedPatient('9000000002')}/1`, `Observation/${await aggregatedObservation('o-bad')}/1`]));
});

/** Two copies batches, each of one Observation (a Patient batch would wait for the other's lock of the Patient groups). */
function twoWorkers(a: WorkerOptions) {
  const took: Record<'a' | 'b', string[]> = { a: [], b: [] };
  const record = (who: 'a' | 'b', then?: (item: OutboxItem) => Promise<void>) => async (item: OutboxItem) => {
    took[who].push(item.res_id);
    await then?.(item);
  };
  return {
    took,
    a: new AggregationWorker(t.db.sql, aggregator, { ...a, batchSize: 1, afterItem: record('a', a.afterItem) }),
    b: new AggregationWorker(t.db.sql, aggregator, { batchSize: 1, afterItem: record('b') }),
  };
}

/** A promise and the function that resolves it. */
function signal(): { wait: Promise<void>; fire: () => void } {
  let fire!: () => void;
  const wait = new Promise<void>((resolve) => (fire = resolve));
  return { wait, fire };
}

/**
 * Two batches overlap: A has aggregated its item and is still at work when B runs from start to commit. The
 * change log's lock is free meanwhile (before, A held it from its first version on, and B waited for all of
 * A), and B, which committed first, holds the earlier position.
 */
postgresTest('while a batch is at work the change log is free, and a batch that commits first logs first', async () => {
  await observation('o-a1');
  await observation('o-b1');
  const from = (await logged()).length;
  const atWork = signal();
  const gate = signal();
  const { took, a, b } = twoWorkers({
    afterItem: async () => {
      atWork.fire();
      await gate.wait;
    },
  });
  const runA = a.runOnce();
  try {
    await atWork.wait;
    expect(await lockFree()).toBe(true);
    expect(await b.runOnce()).toBe(1);
  } finally {
    gate.fire();
  }
  expect(await runA).toBe(1);
  expect(took.a).toHaveLength(1);
  expect(took.b).toHaveLength(1);
  const order = (await logged()).slice(from).map((l) => l.ref.split('/')[1]);
  expect(order).toEqual([await aggregatedObservation(took.b[0]), await aggregatedObservation(took.a[0])]);
});

/**
 * From the moment a batch logs its changes until it commits, it holds the lock: a batch that logs meanwhile
 * waits for it, and so takes the later position, as it commits later.
 */
postgresTest('a batch that logs while another has logged and not yet committed waits for it, and logs after it', async () => {
  await observation('o-a2');
  await observation('o-b2');
  const from = (await logged()).length;
  const hasLogged = signal();
  const gate = signal();
  const { took, a, b } = twoWorkers({
    beforeCommit: async () => {
      hasLogged.fire();
      await gate.wait;
    },
  });
  const runA = a.runOnce();
  let runB: Promise<number> | undefined;
  try {
    await hasLogged.wait;
    expect(await lockFree()).toBe(false);
    runB = b.runOnce();
    // B reaches its log and waits for A's lock (a state, polled: no timing is asserted).
    for (let i = 0; ; i++) {
      const [{ n }] = await t.db.sql.query<{ n: bigint }[]>(
        `SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
      );
      if (Number(n) === 1) break;
      if (i > 1000) throw new Error('the second batch never waited for the change log');
      await new Promise((r) => setTimeout(r, 10));
    }
  } finally {
    gate.fire();
  }
  expect(await runA).toBe(1);
  expect(await runB).toBe(1);
  const order = (await logged()).slice(from).map((l) => l.ref.split('/')[1]);
  expect(order).toEqual([await aggregatedObservation(took.a[0]), await aggregatedObservation(took.b[0])]);
});
