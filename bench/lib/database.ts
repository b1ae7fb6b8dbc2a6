import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { createCitusDatabase, dropCitusDatabase } from '../../src/store/citusDatabase';

/**
 * A fresh PostgreSQL database for one bench run, created through `adminUrl` and dropped at the end. With
 * `CITUS=on`, `adminUrl` is a Citus coordinator: the database is made on every node, and the server the bench
 * starts (which inherits CITUS) distributes its tables after migrating.
 */
export interface BenchDatabase {
  url: string;
  version: string;
  drop(): Promise<void>;
}

export const DEFAULT_POSTGRES = 'postgresql://postgres@127.0.0.1:5432/postgres';

export async function freshDatabase(adminUrl: string): Promise<BenchDatabase> {
  const name = `tributary_bench_${Date.now()}_${randomBytes(3).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  try {
    await admin.connect();
  } catch (err) {
    throw new Error(`cannot reach PostgreSQL at ${adminUrl.replace(/:[^:@/]*@/, ':***@')} (${(err as Error).message}); set DATABASE_URL, or use --store pglite`, { cause: err });
  }
  let version: string;
  const citus = /^(on|true|yes|1)$/i.test(process.env.CITUS ?? '');
  try {
    if (citus) await createCitusDatabase(adminUrl, name);
    else await admin.query(`CREATE DATABASE ${name}`);
    version = (await admin.query('SHOW server_version')).rows[0].server_version as string;
  } finally {
    await admin.end();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    version,
    async drop() {
      if (citus) return dropCitusDatabase(adminUrl, name);
      const again = new pg.Client({ connectionString: adminUrl });
      await again.connect();
      try {
        await again.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await again.end();
      }
    },
  };
}
