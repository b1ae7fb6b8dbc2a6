import { cpSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SearchService } from '../../src/search/searchService';
import { migrate, resolveMigrationsDir } from '../../src/store/migrator';
import { ResourceRepository } from '../../src/store/resourceRepository';
import { type Database, openDatabase } from '../../src/store/db';

/**
 * An existing store upgraded by the lean-index migration keeps its data: index rows are re-keyed so that
 * searches still find them, and each resource's history is still complete.
 */
const LEAN = '20261202000000_lean_index';
let db: Database;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'migrations-'));
  for (const name of readdirSync(resolveMigrationsDir()).filter((n) => n < LEAN)) cpSync(path.join(resolveMigrationsDir(), name), path.join(dir, name), { recursive: true });
  db = await openDatabase({ dataDir: 'memory://' });
  await migrate(db, dir);
});
afterAll(async () => {
  await db.close();
  rmSync(dir, { recursive: true, force: true });
});

test('rows written before the migration are searchable and their versions readable after it', async () => {
  // What the previous schema held for a Patient at version 2: both versions in history, three-column index rows.
  const store = 'ep-old';
  const v1 = { resourceType: 'Patient', id: 'p', meta: { versionId: '1', lastUpdated: '2026-01-01T00:00:00.000Z' }, gender: 'male' };
  const v2 = { ...v1, meta: { versionId: '2', lastUpdated: '2026-01-02T00:00:00.000Z' }, gender: 'female', name: [{ family: 'Old' }] };
  const [{ pk }] = await db.prisma.$queryRawUnsafe<{ pk: bigint }[]>(
    `INSERT INTO resource (store, type, id, version_id, last_updated, content) VALUES ($1, 'Patient', 'p', 2, '2026-01-02', $2::jsonb) RETURNING pk`,
    store,
    JSON.stringify(v2),
  );
  for (const v of [v1, v2]) {
    await db.prisma.$executeRawUnsafe(
      `INSERT INTO resource_history (resource_pk, version_id, store, type, id, last_updated, content) VALUES ($1, $2, $3, 'Patient', 'p', $4::timestamptz, $5::jsonb)`,
      pk,
      Number(v.meta.versionId),
      store,
      v.meta.lastUpdated,
      JSON.stringify(v),
    );
  }
  await db.prisma.$executeRawUnsafe(`INSERT INTO search_token (resource_pk, store, type, param, system, code) VALUES ($1, $2, 'Patient', 'gender', NULL, 'female')`, pk, store);
  await db.prisma.$executeRawUnsafe(`INSERT INTO search_string (resource_pk, store, type, param, value, exact) VALUES ($1, $2, 'Patient', 'name', 'old', 'Old')`, pk, store);

  expect((await migrate(db)).applied[0]).toBe(LEAN);

  const search = new SearchService(db.sql);
  const found = async (params: [string, string][]) => (await search.findMatches({ store, resourceType: 'Patient', params }, 5)).map((m) => m.id);
  expect(await found([['gender', 'female']])).toEqual(['p']);
  expect(await found([['name', 'ol']])).toEqual(['p']);
  const repo = new ResourceRepository(db.sql);
  expect((await repo.vread(store, 'Patient', 'p', 1)).resource?.gender).toBe('male');
  expect((await repo.vread(store, 'Patient', 'p', 2)).resource?.gender).toBe('female');
  const history = await repo.history({ store, type: 'Patient', id: 'p' }, { count: 10 });
  expect(history.entries.map((e) => e.versionId)).toEqual([2, 1]);
});
