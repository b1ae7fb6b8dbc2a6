import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { openDatabase } from '../../src/store/db';
import { migrate, resolveMigrationsDir } from '../../src/store/migrator';
import { buildPgliteTemplate, seedFromTemplate, templateKey } from '../../src/store/pgliteTemplate';

/**
 * The install's pre-migrated embedded database: a new data folder starts as a copy of it (owner-only), the
 * migrator then finds nothing to apply, and a template for other migrations is never used.
 */
jest.setTimeout(600_000);

const root = mkdtempSync(path.join(tmpdir(), 'tributary-template-'));
const cache = path.join(root, 'cache');

afterAll(() => rmSync(root, { recursive: true, force: true }));

/** The permission bits found on the folders (itself included) and on the files under `dir`. */
function modes(dir: string): { dirs: Set<number>; files: Set<number> } {
  const dirs = new Set<number>([statSync(dir).mode & 0o777]);
  const files = new Set<number>();
  const visit = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const full = path.join(d, e.name);
      if (e.isDirectory()) {
        dirs.add(statSync(full).mode & 0o777);
        visit(full);
      } else files.add(statSync(full).mode & 0o777);
    }
  };
  visit(dir);
  return { dirs, files };
}

test('without a template a new data folder is left to PGlite and the migrator', async () => {
  const dataDir = path.join(root, 'no-template', 'pglite');
  expect(await seedFromTemplate(dataDir, cache)).toBe(false);
  expect(existsSync(dataDir)).toBe(false);
});

test('a new data folder seeded from the template is owner-only, opens, and has every migration applied', async () => {
  const first = await buildPgliteTemplate(cache);
  expect(first.built).toBe(true);
  expect((await buildPgliteTemplate(cache)).built).toBe(false); // already there: not rebuilt

  const dataDir = path.join(root, 'seeded', 'pglite');
  mkdirSync(path.dirname(dataDir), { recursive: true });
  expect(await seedFromTemplate(dataDir, cache)).toBe(true);
  expect(readdirSync(path.dirname(dataDir))).toEqual(['pglite']); // no scratch copy left beside it
  expect(modes(dataDir)).toEqual({ dirs: new Set([0o700]), files: new Set([0o600]) });

  const db = await openDatabase({ dataDir });
  try {
    expect((await migrate(db)).applied).toEqual([]);
    // The schema is there and writable: the tenancy tables the first admin call uses.
    const tables = await db.sql.query<{ n: number }[]>(`SELECT count(*)::int AS n FROM information_schema.tables WHERE table_name = 'customer'`);
    expect(tables[0].n).toBe(1);
  } finally {
    await db.close();
  }
});

test('two starts seeding the same new folder at once leave one complete copy', async () => {
  const dataDir = path.join(root, 'raced', 'pglite');
  mkdirSync(path.dirname(dataDir), { recursive: true });
  const seeded = await Promise.all([seedFromTemplate(dataDir, cache), seedFromTemplate(dataDir, cache)]);
  expect(seeded.filter(Boolean)).toHaveLength(1);
  expect(readdirSync(path.dirname(dataDir))).toEqual(['pglite']);
  expect(existsSync(path.join(dataDir, 'PG_VERSION'))).toBe(true);
});

test('an existing data folder is never overwritten', async () => {
  const dataDir = path.join(root, 'existing', 'pglite');
  mkdirSync(dataDir, { recursive: true });
  writeFileSync(path.join(dataDir, 'mine'), 'x');
  expect(await seedFromTemplate(dataDir, cache)).toBe(false);
  expect(readdirSync(dataDir)).toEqual(['mine']);
});

test('changed migrations name another template, so a stale one is not used', async () => {
  const migrations = path.join(root, 'migrations');
  cpSync(resolveMigrationsDir(), migrations, { recursive: true });
  const before = await templateKey(migrations);
  expect(await templateKey(migrations)).toBe(before);
  const last = readdirSync(migrations).sort().at(-1)!;
  writeFileSync(path.join(migrations, last, 'migration.sql'), '\n-- changed\n', { flag: 'a' });
  const edited = await templateKey(migrations);
  mkdirSync(path.join(migrations, '99990101000000_added'));
  writeFileSync(path.join(migrations, '99990101000000_added', 'migration.sql'), 'SELECT 1;');
  expect(new Set([before, edited, await templateKey(migrations)]).size).toBe(3);
});
