import { createHash, randomUUID } from 'node:crypto';
import { chmodSync, constants, copyFileSync, mkdirSync, readdirSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { openDatabase } from './db';
import { migrate, resolveMigrationsDir } from './migrator';

/**
 * A pre-migrated embedded database, built once at install (`npm install` → scripts/postinstall.js) and
 * copied into a new data folder on its first start. Creating a PGlite cluster and applying every migration
 * is most of a first start (seconds); copying a few megabytes of files is not. The template lives under
 * `node_modules/.cache/tributary/`, named after a digest of the migrations and the PGlite version: changed
 * migrations or another PGlite name another template, so a stale one is never used (a missing one means the
 * slow path: PGlite's initdb and the migrator, as before). The migrator still runs on every start and finds
 * the template's migrations applied.
 */
const TEMPLATE_FORMAT = 1; // bump when the way a template is made changes

/** The package's root: two levels above prisma/migrations (from the sources and from dist/ alike). */
function packageRoot(): string {
  return path.resolve(resolveMigrationsDir(), '..', '..');
}

/** The install's cache folder (tests pass their own to the functions below). */
export function defaultCacheDir(): string {
  return path.join(packageRoot(), 'node_modules', '.cache', 'tributary');
}

async function pgliteVersion(): Promise<string> {
  const main = require.resolve('@electric-sql/pglite');
  // …/node_modules/@electric-sql/pglite/dist/index.cjs → the package's own package.json (its exports hide it).
  const pkg = JSON.parse(await readFile(path.join(path.dirname(main), '..', 'package.json'), 'utf8')) as { version: string };
  return pkg.version;
}

/** The digest naming a template: every migration's name and text, the PGlite version and the format. */
export async function templateKey(migrationsDir = resolveMigrationsDir()): Promise<string> {
  const hash = createHash('sha256').update(`format ${TEMPLATE_FORMAT}\npglite ${await pgliteVersion()}\n`);
  const names = (await readdir(migrationsDir, { withFileTypes: true }))
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    .sort();
  for (const name of names) hash.update(`${name}\n`).update(await readFile(path.join(migrationsDir, name, 'migration.sql')));
  return hash.digest('hex').slice(0, 16);
}

/** Where the template for the current migrations lives (whether or not it has been built). */
export async function templatePath(cacheDir = defaultCacheDir()): Promise<string> {
  return path.join(cacheDir, `pglite-${await templateKey()}`);
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}

/**
 * Builds the template for the current migrations unless it is there, and removes templates of other
 * migrations. Built in a scratch folder and renamed into place, so a half-built template is never found.
 * Resolves to the template's folder.
 */
export async function buildPgliteTemplate(cacheDir = defaultCacheDir()): Promise<{ dir: string; built: boolean }> {
  const dir = await templatePath(cacheDir);
  if (await exists(path.join(dir, 'PG_VERSION'))) return { dir, built: false };
  await mkdir(cacheDir, { recursive: true, mode: 0o700 });
  const scratch = `${dir}.building-${process.pid}`;
  await rm(scratch, { recursive: true, force: true });
  try {
    const db = await openDatabase({ dataDir: scratch });
    try {
      await migrate(db);
    } finally {
      await db.close();
    }
    await rename(scratch, dir);
  } catch (err) {
    await rm(scratch, { recursive: true, force: true });
    // Another install finished the same template first: theirs is as good as ours.
    if (await exists(path.join(dir, 'PG_VERSION'))) return { dir, built: false };
    throw err;
  }
  for (const e of await readdir(cacheDir)) {
    if (e.startsWith('pglite-') && path.join(cacheDir, e) !== dir && !e.includes('.building-')) await rm(path.join(cacheDir, e), { recursive: true, force: true });
  }
  return { dir, built: true };
}

/**
 * Gives a data folder that does not exist yet a copy of the template, owner-only (folders 0700, files 0600:
 * it is the whole database). Copied beside it and renamed, so an interrupted copy leaves no database that
 * looks complete. Resolves to true when it did; false (nothing done) when the folder exists or there is
 * no template for the current migrations.
 */
export async function seedFromTemplate(dataDir: string, cacheDir = defaultCacheDir()): Promise<boolean> {
  if (await exists(dataDir)) return false;
  const template = await templatePath(cacheDir);
  if (!(await exists(path.join(template, 'PG_VERSION')))) return false;
  const scratch = `${dataDir}.seeding-${randomUUID()}`;
  await rm(scratch, { recursive: true, force: true });
  try {
    copyTree(template, scratch);
    await rename(scratch, dataDir);
  } catch (err) {
    await rm(scratch, { recursive: true, force: true });
    // Another process seeded the same folder first: it is a complete copy all the same.
    if (await exists(path.join(dataDir, 'PG_VERSION'))) return false;
    throw err;
  }
  return true;
}

/**
 * Copies the template's ~1,200 files owner-only (folders 0700, files 0600), synchronously: this runs before
 * the server listens, so there is nothing to yield to, and one plain copyFile + chmod per file costs a
 * fraction of the CPU of `fs.cp` followed by a chmod walk (their promises and per-entry stats were ~1 s of a
 * first start's CPU under load). FICLONE makes a copy-on-write clone where the file system can.
 */
function copyTree(from: string, to: string): void {
  mkdirSync(to, { mode: 0o700 });
  if (process.platform !== 'win32') chmodSync(to, 0o700); // exactly 0700, whatever the umask
  for (const e of readdirSync(from, { withFileTypes: true })) {
    const source = path.join(from, e.name);
    const target = path.join(to, e.name);
    if (e.isDirectory()) copyTree(source, target);
    else {
      copyFileSync(source, target, constants.COPYFILE_FICLONE);
      if (process.platform !== 'win32') chmodSync(target, 0o600);
    }
  }
}
