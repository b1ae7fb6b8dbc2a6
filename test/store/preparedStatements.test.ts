import { AuditLog } from '../../src/audit/auditLog';
import { ResourceRepository } from '../../src/store/resourceRepository';
import { postgresSql, type SqlClient } from '../../src/store/sql';
import { createTestDatabase, type TestDatabase } from '../support/testDatabase';

/**
 * The statements run on every request — reading a resource by its key, writing a batch of audit events — are
 * prepared once per pooled PostgreSQL connection and then run by name (store/preparedStatements.ts): planned on
 * every call, a key read spent twice as long planning as executing. Checked in `pg_prepared_statements` of the
 * connection itself (a pool of one), while everything else stays unnamed.
 */
let database: TestDatabase;
let sql: SqlClient;

beforeAll(async () => {
  database = await createTestDatabase();
  if (database.url) sql = await postgresSql(database.url, 1);
});
afterAll(async () => {
  await sql?.close();
  await database?.drop();
});

const prepared = async () =>
  (await sql.query<{ statement: string }[]>('SELECT statement FROM pg_prepared_statements ORDER BY prepare_time')).map((r) => r.statement.replace(/\s+/g, ' '));

test('key reads and audit batches are prepared once per connection; other statements are not', async () => {
  if (!database.url) return; // the embedded store runs every statement as text
  const repo = new ResourceRepository(sql, []);
  const created = await repo.create('ep-prepared', { resourceType: 'Patient', id: 'p1', gender: 'female' });
  for (let i = 0; i < 7; i++) expect((await repo.read('ep-prepared', 'Patient', created.id)).resource?.gender).toBe('female');
  await expect(repo.read('ep-prepared', 'Patient', 'missing')).rejects.toThrow(/not known/);
  const audit = new AuditLog(sql, { serverUrl: () => 'http://tributary.test' });
  for (let i = 0; i < 3; i++) {
    await audit.record({
      subtype: 'read',
      caller: { clientId: 'c1', customerId: 'cust' },
      store: 'ep-prepared',
      resources: [{ type: 'Patient', id: created.id, versionId: created.versionId }],
      status: 200,
    });
  }
  const statements = await prepared();
  expect(
    statements.filter((s) => s.startsWith('SELECT pk, store, type, id, version_id, last_updated, deleted, content::text AS content FROM resource WHERE store = $1')),
  ).toHaveLength(1);
  expect(statements.filter((s) => s.startsWith('INSERT INTO "audit_event"'))).toHaveLength(1);
  expect(statements.some((s) => s.startsWith('SELECT statement FROM pg_prepared_statements'))).toBe(false);
  expect((await sql.query<{ n: number }[]>('SELECT count(*)::int AS n FROM audit_event'))[0].n).toBe(3);
});
