import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort } from './server';

/**
 * A PostgreSQL instance of our own (initdb + pg_ctl on a free port under a temporary folder), for the
 * reliability harnesses that stop and start the database under a running server, and a streaming replica of
 * one (the scale scenario, test/scale/): never the shared instance.
 * PostgreSQL refuses to run as root, so as root the cluster belongs to the `postgres` user.
 */
export interface PrivatePostgres {
  /** `postgresql://postgres@127.0.0.1:<port>/postgres`. */
  readonly url: string;
  readonly port: number;
  /** Stops the server (`immediate`: as a crash would, no checkpoint). */
  stop(mode?: 'fast' | 'immediate'): void;
  start(): void;
  /** Stops it and removes its folder. */
  destroy(): void;
}

/** Whether initdb and pg_ctl can be run here at all (tests skip when not). */
export function postgresAvailable(): boolean {
  return spawnSync('initdb', ['--version']).status === 0 && spawnSync('pg_ctl', ['--version']).status === 0;
}

/** Whether a streaming replica can be made here too. */
export function replicaAvailable(): boolean {
  return postgresAvailable() && spawnSync('pg_basebackup', ['--version']).status === 0;
}

const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;

function run(command: string, args: string[]): void {
  const [file, argv] = asRoot ? ['runuser', ['-u', 'postgres', '--', command, ...args]] : [command, args];
  execFileSync(file, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
}

export interface PrivatePostgresOptions {
  /**
   * Start a streaming replica (hot standby) of this instance instead of a fresh cluster: `pg_basebackup -R`
   * copies it and writes the standby settings, and the copy follows it from then on.
   */
  replicaOf?: PrivatePostgres;
}

export async function startPrivatePostgres(options: PrivatePostgresOptions = {}): Promise<PrivatePostgres> {
  const dir = mkdtempSync(path.join(tmpdir(), 'tributary-pg-'));
  const data = path.join(dir, 'data');
  if (asRoot) {
    chmodSync(dir, 0o755);
    chownSync(dir, Number(execFileSync('id', ['-u', 'postgres']).toString().trim()), Number(execFileSync('id', ['-g', 'postgres']).toString().trim()));
  }
  const port = await freePort();
  // initdb's default pg_hba.conf lets local replication connections in (trust), which pg_basebackup and the standby use.
  if (options.replicaOf)
    run('pg_basebackup', ['-h', '127.0.0.1', '-p', String(options.replicaOf.port), '-U', 'postgres', '-D', data, '-R', '-X', 'stream', '-c', 'fast', '--no-sync']);
  else run('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync']);
  // Small and quick: fsync stays on (the crash checks are about what PostgreSQL acknowledged).
  const serverOptions = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c max_connections=100 -c shared_buffers=64MB`;
  const start = () => run('pg_ctl', ['-D', data, '-o', serverOptions, '-l', path.join(dir, 'log'), '-w', '-t', '60', 'start']);
  start();
  let running = true;
  const instance: PrivatePostgres = {
    url: `postgresql://postgres@127.0.0.1:${port}/postgres`,
    port,
    stop(mode = 'fast') {
      if (!running) return;
      run('pg_ctl', ['-D', data, '-m', mode, '-w', '-t', '60', 'stop']);
      running = false;
    },
    start() {
      if (running) return;
      start();
      running = true;
    },
    destroy() {
      try {
        instance.stop('immediate');
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
  return instance;
}
