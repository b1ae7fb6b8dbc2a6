import pg from 'pg';
import { stringifyFhirJson } from '../../src/fhir/losslessJson';
import { namedQueryRunner } from '../../src/store/namedQuery';
import { preparedStatement } from '../../src/store/preparedStatements';
import { postgresSql, type SqlClient } from '../../src/store/sql';
import { createTestDatabase, type TestDatabase } from '../support/testDatabase';

/**
 * Prepared statements bypass `pg`'s own result handling (store/namedQuery.ts): their rows must come back exactly
 * as the same statement's do when `pg` runs it as an ad hoc query — every type the store reads, nulls, decimals
 * kept to their digits — and a failing statement must leave its connection usable. PostgreSQL only: the
 * embedded store runs every statement as text.
 */
const onPostgres = /^postgres(ql)?:\/\//.test(process.env.DATABASE_URL ?? '');
const describeOnPostgres = onPostgres ? describe : describe.skip;

describeOnPostgres('prepared statements run by name', () => {
  let database: TestDatabase;
  let sql: SqlClient;

  beforeAll(async () => {
    database = await createTestDatabase();
    sql = await postgresSql(database.url as string, 2);
    await sql.execute(`CREATE TABLE named_probe (pk BIGSERIAL PRIMARY KEY, key TEXT UNIQUE, at TIMESTAMPTZ, flag BOOLEAN, n INT, tags TEXT[], content JSONB)`);
    await sql.execute(
      `INSERT INTO named_probe (key, at, flag, n, tags, content) VALUES
        ('a', '2026-12-06T05:24:26.123456Z', true, 7, ARRAY['x','y'], '{"resourceType":"Observation","valueQuantity":{"value":1.50}}'),
        ('b', NULL, NULL, NULL, NULL, NULL)`,
    );
  });
  afterAll(async () => {
    await sql?.close();
    await database?.drop();
  });

  const SELECT_ALL = preparedStatement('SELECT pk, key, at, flag, n, tags, content, content::text AS text FROM named_probe WHERE key = ANY($1::text[]) ORDER BY key');

  test('rows equal those of the same statement run ad hoc, on every call of every connection', async () => {
    // The ad hoc run: the same text with a space added, so it is not the registered (named) statement.
    const adHoc = await sql.query<Record<string, unknown>[]>(`${SELECT_ALL} `, ['a', 'b']);
    expect(adHoc).toHaveLength(2);
    expect(typeof adHoc[0].pk).toBe('bigint');
    expect(adHoc[0].at).toEqual(new Date('2026-12-06T05:24:26.123Z'));
    expect(adHoc[1]).toMatchObject({ key: 'b', at: null, flag: null, n: null, tags: null, content: null, text: null });
    // More calls than the pool has connections, in parallel: each connection prepares it, then runs it by name.
    const named = await Promise.all(Array.from({ length: 8 }, () => sql.query<Record<string, unknown>[]>(SELECT_ALL, ['a', 'b'])));
    for (const rows of named) {
      expect(rows).toEqual(adHoc);
      expect(Object.keys(rows[0])).toEqual(['pk', 'key', 'at', 'flag', 'n', 'tags', 'content', 'text']);
    }
    // The decimal keeps its digits through the lossless JSON reader.
    expect(stringifyFhirJson(named[0][0].content)).toBe('{"resourceType":"Observation","valueQuantity":{"value":1.50}}');
    expect(await sql.query(SELECT_ALL, ['none'])).toEqual([]);
  });

  test('a write run by name reports the rows it changed; a failing one rejects with its SQLSTATE and the connection goes on', async () => {
    const insert = preparedStatement('INSERT INTO named_probe (key, n) VALUES ($1, $2)');
    const bump = preparedStatement('UPDATE named_probe SET n = n + 1 WHERE key = ANY($1::text[]) AND n IS NOT NULL');
    expect(await sql.execute(insert, 'c', 1)).toBe(1);
    await expect(sql.execute(insert, 'c', 2)).rejects.toMatchObject({ code: '23505' });
    expect(await sql.execute(bump, ['a', 'b', 'c'])).toBe(2);
    const rows = await sql.query<{ key: string; n: number }[]>(SELECT_ALL, ['a', 'c']);
    expect(rows.map((r) => [r.key, r.n])).toEqual([
      ['a', 8],
      ['c', 2],
    ]);
  });

  test('a value its parser rejects fails that statement only; the connection reads on', async () => {
    const pool = new pg.Pool({ connectionString: database.url as string, max: 1 });
    try {
      const failOnTimestamps = (oid: number) =>
        oid === 1184
          ? () => {
              throw new Error('unreadable timestamp');
            }
          : (raw: string) => raw;
      const run = namedQueryRunner(pg.Query, failOnTimestamps);
      const client = await pool.connect();
      try {
        await expect(run(client, 'probe_at', 'SELECT key, at FROM named_probe WHERE key = $1', ['a'])).rejects.toThrow('unreadable timestamp');
        expect((await run(client, 'probe_key', 'SELECT key, n FROM named_probe WHERE key = $1', ['a'])).rows).toEqual([{ key: 'a', n: '8' }]);
        // A null is never parsed, so the statement that failed on a value succeeds on a row without one.
        expect((await run(client, 'probe_at', 'SELECT key, at FROM named_probe WHERE key = $1', ['b'])).rows).toEqual([{ key: 'b', at: null }]);
      } finally {
        client.release();
      }
    } finally {
      await pool.end();
    }
  });
});
