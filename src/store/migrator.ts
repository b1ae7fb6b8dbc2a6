import { createHash, randomUUID } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Database } from './db';
import { applyCitusLayout } from './citusLayout';

/**
 * Applies pending SQL migrations from `prisma/migrations/<stamp>_<name>/migration.sql` in name order and
 * records each in `_prisma_migrations` exactly as `prisma migrate deploy` would, so either tool can take
 * over from the other. An advisory lock keeps servers starting together from racing.
 */
const LOCK_KEY = 72707369; // arbitrary, constant: "TRIB"

const BOOKKEEPING = `
CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
  "id" VARCHAR(36) PRIMARY KEY NOT NULL,
  "checksum" VARCHAR(64) NOT NULL,
  "finished_at" TIMESTAMPTZ,
  "migration_name" VARCHAR(255) NOT NULL,
  "logs" TEXT,
  "rolled_back_at" TIMESTAMPTZ,
  "started_at" TIMESTAMPTZ NOT NULL DEFAULT now(),
  "applied_steps_count" INTEGER NOT NULL DEFAULT 0
);`;

export interface MigrationResult {
  applied: string[];
  /** Tables placed on the Citus cluster by this run (`citus`). */
  distributed?: string[];
}

export interface MigrateOptions {
  /** Then place the tables on a Citus cluster (citusLayout.ts); by default when `CITUS=on` (tests, bench). */
  citus?: boolean;
}

export async function migrate(db: Database, dir = resolveMigrationsDir(), options: MigrateOptions = {}): Promise<MigrationResult> {
  const citus = options.citus ?? /^(on|true|yes|1)$/i.test(process.env.CITUS ?? '');
  const names = (await readdir(dir, { withFileTypes: true }))
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    .sort();
  return db.withSession(async (session) => {
    await session.exec(`SELECT pg_advisory_lock(${LOCK_KEY});`);
    try {
      await session.exec(BOOKKEEPING);
      const done = await session.query<{ migration_name: string; checksum: string }>(
        `SELECT migration_name, checksum FROM "_prisma_migrations" WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL`,
      );
      const applied = new Map(done.map((r) => [r.migration_name, r.checksum]));
      const result: string[] = [];
      for (const name of names) {
        const sql = await readFile(path.join(dir, name, 'migration.sql'), 'utf8');
        const checksum = createHash('sha256').update(sql).digest('hex');
        const previous = applied.get(name);
        if (previous !== undefined) {
          if (previous !== checksum) {
            throw new Error(`migration ${name} was changed after it was applied (checksum differs)`);
          }
          continue;
        }
        // The migration and its record commit together: a failed migration leaves no trace to clean up.
        await session.exec(
          `BEGIN;\n${sql}\n;INSERT INTO "_prisma_migrations" (id, checksum, finished_at, migration_name, applied_steps_count)
           VALUES ('${randomUUID()}', '${checksum}', now(), '${name.replace(/'/g, "''")}', 1);\nCOMMIT;`,
        );
        result.push(name);
      }
      // Outside the migrations' transactions: Citus moves data between nodes in each call of its own.
      if (citus) return { applied: result, distributed: await applyCitusLayout(session) };
      return { applied: result };
    } catch (err) {
      await session.exec('ROLLBACK;').catch(() => undefined);
      throw err;
    } finally {
      await session.exec(`SELECT pg_advisory_unlock(${LOCK_KEY});`);
    }
  });
}

/** Works from the sources (ts-jest, tsx) and from the compiled `dist/src/store`. */
export function resolveMigrationsDir(): string {
  const fromSrc = path.join(__dirname, '..', '..', 'prisma', 'migrations');
  const fromDist = path.join(__dirname, '..', '..', '..', 'prisma', 'migrations');
  return __dirname.includes(`${path.sep}dist${path.sep}`) ? fromDist : fromSrc;
}
