import { execFileSync } from 'node:child_process';
import http from 'node:http';
import { DEFAULT_POSTGRES, freshDatabase, type BenchDatabase } from '../../bench/lib/database';
import { entryCount, patientBundle } from '../../bench/lib/dataset';
import { inFlightWrite } from '../../bench/lib/inFlightWrite';
import { ROOT, startServer, type RunningServer } from '../../bench/lib/server';
import pg from 'pg';

/**
 * Issue 16 item 11, graceful shutdown: SIGTERM while transaction Bundles are being written lets every one
 * of them finish and be answered, then the process exits 0 (before SHUTDOWN_TIMEOUT_MS would force it) —
 * the server as deployed (`dist/src/server.js`, its own process) on PostgreSQL.
 */
const onPostgres = /^postgres(ql)?:\/\//.test(process.env.DATABASE_URL ?? '');

(onPostgres ? describe : describe.skip)('graceful shutdown', () => {
  let database: BenchDatabase;
  let server: RunningServer;
  beforeAll(async () => {
    execFileSync(process.execPath, ['scripts/build.js', '--if-stale'], { cwd: ROOT, env: { ...process.env, NODE_OPTIONS: '' } });
    database = await freshDatabase(process.env.DATABASE_URL ?? DEFAULT_POSTGRES);
    server = await startServer({ env: { DATABASE_URL: database.url, SHUTDOWN_TIMEOUT_MS: '120000' } });
  }, 180_000);
  afterAll(async () => {
    await server?.stop();
    await database?.drop();
  }, 60_000);

  test('SIGTERM during writes: every request in flight completes with 200, all of it is stored, and the process exits 0', async () => {
    const tenant = await server.tenant('shutdown');
    const bundles = [0, 1, 2, 3].map((i) => patientBundle(i));
    // Each on a connection of its own, SIGTERM only once every body is on the wire (and a moment for the server
    // to read it): a request still in the client's pool at SIGTERM is refused, rightly, and proves nothing.
    const writes = bundles.map((body) => inFlightWrite(tenant.base, tenant.token, body));
    expect(await Promise.all(writes.map((w) => w.sent))).toEqual([true, true, true, true]);
    await new Promise((r) => setTimeout(r, 300));
    const signalled = Date.now();
    await server.kill('SIGTERM');
    const outcomes = await Promise.all(writes.map((w) => w.outcome));
    expect(outcomes.map((o) => o.error ?? o.status)).toEqual([200, 200, 200, 200]);
    // A Bundle of a few hundred resources takes longer to write than that: some were still being written at SIGTERM.
    expect(outcomes.some((o) => o.at > signalled)).toBe(true);
    expect(server.exitCode).toBe(0);
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    // The bench tenant's own default source Organization (bench/lib/server.ts, id from its name) is there too: only the Bundles' resources count.
    const { rows } = await client.query(`SELECT count(*)::int AS n FROM resource WHERE store = $1 AND NOT (type = 'Organization' AND id = $2)`, [tenant.endpointId, 'shutdown']);
    await client.end();
    expect(rows[0].n).toBe(bundles.reduce((n, b) => n + entryCount(b), 0));
  }, 180_000);

  test('a request in flight on a keep-alive connection at SIGTERM is answered with Connection: close, and the process does not wait on its idle socket', async () => {
    const again = await startServer({ env: { DATABASE_URL: database.url, SHUTDOWN_TIMEOUT_MS: '120000' } });
    try {
      const tenant = await again.tenant('shutdown keep-alive');
      // A client that keeps its connections open between requests, as load balancers and HTTP client pools do.
      const agent = new http.Agent({ keepAlive: true });
      const body = patientBundle(4);
      let markSent: () => void = () => undefined;
      const sent = new Promise<void>((resolve) => (markSent = resolve));
      const answered = new Promise<{ status: number; connection?: string; socketClosed: Promise<number> }>((resolve, reject) => {
        const req = http.request(tenant.base, {
          method: 'POST',
          agent,
          headers: { authorization: `Bearer ${tenant.token}`, 'content-type': 'application/fhir+json', 'content-length': Buffer.byteLength(body) },
        });
        req.on('finish', markSent);
        req.on('error', reject);
        req.on('response', (res) => {
          const socketClosed = new Promise<number>((closed) => res.socket.once('close', () => closed(Date.now())));
          res.resume();
          res.on('end', () => resolve({ status: res.statusCode ?? 0, connection: res.headers.connection, socketClosed }));
        });
        req.end(body);
      });
      await sent;
      await new Promise((r) => setTimeout(r, 300));
      const signalled = Date.now();
      const exited = again.kill('SIGTERM').then(() => Date.now());
      const answer = await answered;
      expect(answer.status).toBe(200);
      expect(answer.connection).toBe('close');
      // The server closes the socket after its answer; the client keeps it (keepAlive) if nobody does.
      await answer.socketClosed;
      const exitedAt = await exited;
      expect(again.exitCode).toBe(0);
      // Before, an answered keep-alive socket stayed open until Apollo's drain plugin closed every connection 10 s
      // into the shutdown; now nothing is left to wait for once the answer is sent.
      expect(exitedAt - signalled).toBeLessThan(8_000);
      agent.destroy();
    } finally {
      await again.stop();
    }
  }, 180_000);
});
