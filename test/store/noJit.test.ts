import { createTestDatabase, type TestDatabase } from '../support/testDatabase';

/**
 * The server's PostgreSQL sessions run without JIT compilation (store/sql.ts): on tables without fresh statistics
 * the aggregated copies' index statement was estimated past jit_above_cost and spent ~250 ms compiling before
 * writing a batch that takes a few milliseconds. Every connection of the pool, in or out of a transaction.
 */
let database: TestDatabase;

beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(() => database?.drop());

test('every pooled PostgreSQL session has JIT compilation off', async () => {
  if (!database.url) return; // PGlite compiles nothing
  const sql = database.db.sql;
  // More sessions than the pool keeps at once (5), some inside transactions.
  const settings = await Promise.all(
    Array.from({ length: 8 }, (_, i) =>
      i % 2 ? sql.transaction(async (tx) => (await tx.query<{ jit: string }[]>('SHOW jit'))[0].jit) : sql.query<{ jit: string }[]>('SHOW jit').then((rows) => rows[0].jit),
    ),
  );
  expect(settings).toEqual(Array(8).fill('off'));
});
