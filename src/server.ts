import path from 'node:path';
import { buildApp } from './app';
import { ConfigError, loadConfig } from './config';
import { loadAdminCredential } from './access/adminCredential';
import { TokenService } from './access/tokens';
import { openDatabase } from './store/db';
import { migrate } from './store/migrator';
import { warmValidation } from './fhir/validation';
import { TenancyRepository } from './store/tenancyRepository';
import { ensureDataDir } from './ops/dataDir';
import { seedFromTemplate } from './store/pgliteTemplate';

/** How long after listening the validator warm-up waits for a first request before starting anyway. */
const WARM_UP_DELAY_MS = 2000;

/** `npm start`: open the store, apply pending migrations, serve. Wiring only. */
async function main(): Promise<void> {
  const config = loadConfig();
  // A first start creates the data folder (PGlite creates only its own sub-folder, not the parents).
  await ensureDataDir(config.dataDir);
  // The embedded store gets its own folder beside the admin credential and signing keys; a new one starts
  // as a copy of the install's pre-migrated template when there is one (pgliteTemplate.ts).
  const pgliteDir = path.join(config.dataDir, 'pglite');
  const seeded = !config.databaseUrl && (await seedFromTemplate(pgliteDir));
  const db = await openDatabase({
    databaseUrl: config.databaseUrl,
    replicaUrl: config.databaseReplicaUrl,
    dataDir: pgliteDir,
    poolSize: config.poolSize,
    limits: { statementTimeoutMs: config.statementTimeoutMs, poolWaitMs: config.poolWaitTimeoutMs },
  });
  const { applied } = await migrate(db, undefined, { citus: config.citus });
  const tokens = await TokenService.create({ dataDir: config.dataDir, publicUrl: config.publicUrl, longestTtlSeconds: config.breakGlassSeconds, env: process.env });
  const admin = await loadAdminCredential({ dataDir: config.dataDir, env: process.env, url: config.publicUrl });
  const app = await buildApp({ config, db, tenancy: new TenancyRepository(db.prisma), tokens, adminToken: admin.token });
  if (seeded) app.log.info(`created the embedded database in ${pgliteDir} from the install's template`);
  if (applied.length) app.log.info({ applied }, 'applied migrations');
  if (admin.source === 'created') app.log.info(`created the admin credential in ${admin.file}`);

  let closing = false;
  const shutdown = async (signal: string) => {
    if (closing) return;
    closing = true;
    app.log.info({ signal }, 'shutting down');
    // Drain: the listener stops taking connections, requests in flight and the aggregation batch in hand
    // finish, then the pool closes. Bounded: whatever still hangs after SHUTDOWN_TIMEOUT_MS is abandoned
    // (its transaction rolls back with the connection; nothing acknowledged is lost).
    setTimeout(() => {
      app.log.error({ timeoutMs: config.shutdownTimeoutMs }, 'shutdown did not finish in time; exiting');
      process.exit(1);
    }, config.shutdownTimeoutMs).unref();
    await app.close();
    await db.close();
    app.log.info({ signal }, 'shut down cleanly');
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));

  await app.listen({ port: config.port, host: config.host });
  // Compile the R4 validator once serving, not on the first write: after the first answer (or after WARM_UP_DELAY_MS
  // without one), in slices that let requests through. Even sliced, it slowed the first answer by ~0.8 s
  // under load (a request needs several turns of the event loop, each behind a slice). A write that arrives
  // sooner compiles what it needs itself; a failure here is the first write's to report.
  let warming = false;
  const warm = () => {
    if (warming) return;
    warming = true;
    warmValidation('R4').catch((err: unknown) => app.log.warn({ err }, 'validator warm-up failed'));
  };
  app.server.once('request', (_req, res) => res.once('finish', () => setImmediate(warm)));
  setTimeout(warm, WARM_UP_DELAY_MS).unref();
  app.log.info(`Tributary serving on ${config.publicUrl} (store: ${db.kind}${db.kind === 'pglite' ? `, ${config.dataDir}` : ''})`);
}

main().catch((err) => {
  // A bad configuration is the operator's to fix: its messages, without a stack trace.
  console.error(err instanceof ConfigError ? err.message : err);
  process.exit(1);
});
