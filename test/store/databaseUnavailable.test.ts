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
