import { readdir } from 'node:fs/promises';
import type { ReplicaLag } from '../store/replicaReads';
import type { Sql } from '../store/sql';
import { resolveMigrationsDir } from '../store/migrator';

/**
 * Readiness (`/readyz`): whether this server can do its work now, as a load balancer or orchestrator asks
 * before sending traffic. Ready when the database answers, every migration shipped with this build is
 * applied, and the in-process aggregation worker is alive (when this process runs one: with
 * AGGREGATION_WORKER=off the workers are other processes, which report on their own). A streaming replica,
 * when configured, is reported with its lag but not required. Liveness (`/healthz`)
 * asks none of this: a database outage must not get a healthy process restarted.
 */
export interface ReadinessDeps {
  sql: Sql;
  /** Whether the in-process worker runs; undefined when this process runs none. */
  workerAlive?: () => boolean;
  migrationsDir?: string;
  /** The streaming replica's state, when one is configured (DATABASE_REPLICA_URL). */
  replica?: () => Promise<ReplicaLag>;
  /** A database that has not answered by then counts as unreachable. */
  timeoutMs?: number;
}

export interface Check {
  ok: boolean;
  detail?: string;
}

export interface Readiness {
  ready: boolean;
  /**
   * The replica is reported, never required: reads go to the primary while it is unreachable or behind, so
   * it does not make this server unready.
   */
  checks: { database: Check; migrations: Check; worker: Check; replica?: Check & Omit<ReplicaLag, 'ok' | 'detail'> };
}

/** `promise`, or a rejection once `ms` have passed: a database that hangs must not hang a probe. */
export async function within<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export class ReadinessCheck {
  private shipped?: Promise<string[]>;

  constructor(private readonly deps: ReadinessDeps) {}

  async check(): Promise<Readiness> {
    const database = await this.database();
    const migrations = database.ok ? await this.migrations() : { ok: false, detail: 'database unreachable' };
    const alive = this.deps.workerAlive;
    const worker = alive ? (alive() ? { ok: true } : { ok: false, detail: 'the in-process aggregation worker is not running' }) : { ok: true, detail: 'runs in other processes' };
    const replica = this.deps.replica ? await this.deps.replica() : undefined;
    return { ready: database.ok && migrations.ok && worker.ok, checks: { database, migrations, worker, ...(replica ? { replica } : {}) } };
  }

  private async database(): Promise<Check> {
    try {
      await within(this.deps.sql.query('SELECT 1'), this.deps.timeoutMs ?? 2000);
      return { ok: true };
    } catch (err) {
      return { ok: false, detail: (err as Error).message };
    }
  }

  private async migrations(): Promise<Check> {
    this.shipped ??= readdir(this.deps.migrationsDir ?? resolveMigrationsDir(), { withFileTypes: true }).then((entries) =>
      entries.filter((e) => e.isDirectory()).map((e) => e.name),
    );
    try {
      const applied = await within(
        this.deps.sql.query<{ migration_name: string }[]>(`SELECT migration_name FROM "_prisma_migrations" WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL`),
        this.deps.timeoutMs ?? 2000,
      );
      const done = new Set(applied.map((r) => r.migration_name));
      const pending = (await this.shipped).filter((name) => !done.has(name)).sort();
      return pending.length ? { ok: false, detail: `pending: ${pending.join(', ')}` } : { ok: true };
    } catch (err) {
      return { ok: false, detail: (err as Error).message };
    }
  }
}
