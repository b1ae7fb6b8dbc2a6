/**
 * What one read costs in CPU (issue 19 item 2), measured rather than timed: starts the built server on a fresh
 * database, stores 50 Patients on a customer endpoint, then reads them (`GET Patient/{id}`, 32 connections) for a
 * fixed time with the audit off and then on, and prints per answered read the CPU of the server process (all its
 * threads), of the PostgreSQL cluster and of the load client, beside the read floor's (a bare node:http server
 * with one primary-key SELECT over the same driver) measured the same way.
 *
 *   DATABASE_URL=postgresql://postgres@127.0.0.1:5440/postgres node scripts/run-ts.js bench/readCost.ts [seconds]
 *
 * The cluster's CPU is read from /proc, so the database must run on this machine and serve nothing else during
 * the run (start one of your own: initdb, pg_ctl); a shared one gives an upper bound.
 */
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { freshDatabase } from './lib/database';
import { startFloorServer } from './lib/floors';
import { runCannon } from './lib/load';
import { clusterTicks, statTicks, TICK_US } from './lib/processCpu';
import { startServer } from './lib/server';

const CONNECTIONS = 32;

interface Cost {
  reads: number;
  rps: number;
  p99: number | null;
  /** CPU per answered read, µs. */
  process: number;
  cluster: number;
}

/** Runs the load against `urls` for `seconds` (after a 2 s warm-up) and reads the CPU `pid` and the cluster spent. */
async function measure(pid: number, postmaster: number, urls: { url: string; headers?: Record<string, string> }[], seconds: number): Promise<Cost> {
  await runCannon({ requests: urls, connections: CONNECTIONS, durationMs: 2_000 });
  const p0 = statTicks(pid, false);
  const c0 = clusterTicks(postmaster);
  const result = await runCannon({ requests: urls, connections: CONNECTIONS, durationMs: seconds * 1000 });
  const reads = result.count - result.statusErrors;
  if (result.statusErrors || result.errors) throw new Error(`${result.statusErrors + result.errors} failed reads (first HTTP ${result.firstFailureStatus})`);
  return {
    reads,
    rps: Math.round(result.rps),
    p99: result.p99,
    process: Math.round(((statTicks(pid, false) - p0) * TICK_US) / reads),
    cluster: Math.round(((clusterTicks(postmaster) - c0) * TICK_US) / reads),
  };
}

async function main(): Promise<void> {
  const seconds = Number(process.argv[2] ?? 10);
  const adminUrl = process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  const dataDir = (await admin.query(`SHOW data_directory`)).rows[0].data_directory as string;
  await admin.end();
  const postmaster = Number(readFileSync(`${dataDir}/postmaster.pid`, 'utf8').split('\n')[0]);
  const db = await freshDatabase(adminUrl);
  const server = await startServer({ env: { DATABASE_URL: db.url, AUDIT: 'off' } });
  try {
    const t = await server.tenant('read-cost');
    const headers = { authorization: `Bearer ${t.token}`, 'content-type': 'application/fhir+json' };
    const ids = Array.from({ length: 50 }, (_, i) => `read-cost-${i}`);
    for (const id of ids) {
      const body = { resourceType: 'Patient', id, name: [{ family: `Family${id}`, given: ['Ann', 'Marie'] }], gender: 'female', birthDate: '1970-01-01' };
      const res = await fetch(`${t.base}/Patient/${id}`, { method: 'PUT', headers, body: JSON.stringify(body) });
      if (res.status >= 300) throw new Error(`PUT ${res.status}`);
    }
    const reads = ids.map((id) => ({ url: `${t.base}/Patient/${id}`, headers: { authorization: `Bearer ${t.token}` } }));
    const rows: [string, Cost][] = [];
    rows.push(['server, AUDIT=off', await measure(server.pid, postmaster, reads, seconds)]);
    await server.restart({ AUDIT: 'on' });
    rows.push(['server, audit on', await measure(server.pid, postmaster, reads, seconds)]);
    // Back to the first setting on a restarted process: what the restart itself changes.
    await server.restart({ AUDIT: 'off' });
    rows.push(['server, AUDIT=off again', await measure(server.pid, postmaster, reads, seconds)]);
    const floor = await startFloorServer('postgres', db.url, []);
    try {
      rows.push([
        'floor',
        await measure(
          floor.pid,
          postmaster,
          ids.map((id) => ({ url: `${floor.url}/${t.endpointId}/Patient/${id}` })),
          seconds,
        ),
      ]);
    } finally {
      await floor.stop();
    }
    console.log(`| run | reads | req/s | p99 ms | process CPU µs per read | PostgreSQL CPU µs per read |`);
    console.log(`|---|---:|---:|---:|---:|---:|`);
    for (const [name, c] of rows) console.log(`| ${name} | ${c.reads} | ${c.rps} | ${c.p99?.toFixed(1)} | ${c.process} | ${c.cluster} |`);
  } finally {
    await server.stop({ removeData: true });
    await db.drop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
