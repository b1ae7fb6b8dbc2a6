import { isDatabaseUnavailable } from '../../src/store/databaseUnavailable';

/**
 * A read on the streaming replica (DATABASE_REPLICA_URL) cancelled by a recovery conflict is transient, like
 * an outage: answered 503 with Retry-After, never a 500. A serialisation failure on the primary (the same
 * SQLSTATE, another message) is not an outage. The errors are shaped as node-postgres reports them.
 */
test('a replica read cancelled by a recovery conflict is transient; a serialisation failure is not', () => {
  const pgError = (code: string, message: string) => Object.assign(new Error(message), { code, severity: 'ERROR' });
  expect(isDatabaseUnavailable(pgError('40001', 'canceling statement due to conflict with recovery'))).toBe(true);
  expect(isDatabaseUnavailable(new Error('search failed', { cause: pgError('40001', 'canceling statement due to conflict with recovery') }))).toBe(true);
  expect(isDatabaseUnavailable(pgError('40001', 'could not serialize access due to concurrent update'))).toBe(false);
});

/**
 * Prisma's P2028, a transaction that could not start (or finish) in its time, is a busy database, not a broken
 * request: 503 with Retry-After. On a loaded host the first admin write after a start (`npm run soak` and
 * `npm run chaos`, `POST /admin/customers`) got it and was answered 500; Prisma's transactions now also wait
 * POOL_WAIT_TIMEOUT_MS for their connection (src/store/db.ts) instead of Prisma's 2 s.
 */
test('a Prisma transaction that could not start in its time is transient', () => {
  const p2028 = Object.assign(new Error('Transaction API error: Unable to start a transaction in the given time.'), { code: 'P2028' });
  expect(isDatabaseUnavailable(p2028)).toBe(true);
  expect(isDatabaseUnavailable(new Error('wrapped', { cause: p2028 }))).toBe(true);
});
