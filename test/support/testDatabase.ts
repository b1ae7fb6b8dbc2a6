import { randomBytes } from 'node:crypto';
import { type Database, openDatabase } from '../../src/store/db';
import { migrate } from '../../src/store/migrator';
import { createCitusDatabase, dropCitusDatabase } from '../../src/store/citusDatabase';

/**
 * A fresh, migrated database for one test file: in-memory PGlite by default, or — when DATABASE_URL names a
 * PostgreSQL server (CI) — a new database on that server, dropped again by `drop()`. With `CITUS=on` and
 * DATABASE_URL at a Citus coordinator, the database is made on every node of the cluster and the migrator
 * distributes the tables (src/store/citusLayout.ts).
 */
export interface TestDatabase {
  db: Database;
  /** The connection URL of the fresh PostgreSQL database, when on PostgreSQL. */
  url?: string;
  drop(): Promise<void>;
}

export interface TestDatabaseOptions {
  queryEvents?: boolean;
  /** A streaming replica of DATABASE_URL's server (any database on it): the test database opens with its copy as `replica`. */
  replicaUrl?: string;
}

export async function createTestDatabase(options: TestDatabaseOptions = {}): Promise<TestDatabase> {
  const base = process.env.DATABASE_URL;
  if (!base || !/^postgres(ql)?:\/\//.test(base)) {
    const db = await openDatabase({ dataDir: 'memory://', queryEvents: options.queryEvents });
    await migrate(db);
    return { db, drop: () => db.close() };
  }
  const pg = await import('pg');
  const name = `trib_t_${process.pid}_${randomBytes(4).toString('hex')}`;
  if (citusRequested()) {
    const url = await createCitusDatabase(base, name);
    const db = await openDatabase({ databaseUrl: url, poolSize: 5, queryEvents: options.queryEvents });
    await migrate(db, undefined, { citus: true });
    return {
      db,
      url,
      async drop() {
        await db.close();
        await dropCitusDatabase(base, name);
      },
    };
  }
  const admin = new pg.Client({ connectionString: base });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(base);
  url.pathname = `/${name}`;
  let db = await openDatabase({ databaseUrl: url.toString(), poolSize: 5, queryEvents: options.queryEvents });
  await migrate(db);
  if (options.replicaUrl) {
    await db.close();
    db = await withReplica(url.toString(), name, options);
  }
  return {
    db,
    url: url.toString(),
    async drop() {
      await db.close();
      const again = new pg.Client({ connectionString: base });
      await again.connect();
      await again.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await again.end();
    },
  };
}

/** The test database again, with its replica's copy (retried until the replica has replayed its creation). */
async function withReplica(url: string, name: string, options: TestDatabaseOptions): Promise<Database> {
  const replica = new URL(options.replicaUrl as string);
  replica.pathname = `/${name}`;
  for (let attempt = 0; ; attempt++) {
    try {
      return await openDatabase({ databaseUrl: url, replicaUrl: replica.toString(), poolSize: 5, queryEvents: options.queryEvents });
    } catch (err) {
      if (attempt > 100) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

function citusRequested(): boolean {
  return /^(on|true|yes|1)$/i.test(process.env.CITUS ?? '');
}
