import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { ConfigError, loadConfig } from '../../src/config';

const run = promisify(execFile);
const ROOT = path.resolve(__dirname, '../..');

function problemsOf(env: NodeJS.ProcessEnv): string[] {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

describe('configuration checked at start', () => {
  test('the defaults need no variable at all', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({ port: 4000, dataDir: './data', logLevel: 'info', publicUrl: 'http://localhost:4000', aggregationWorker: true });
    expect(config.databaseUrl).toBeUndefined();
    // Break-the-glass opens a record for four hours unless configured otherwise.
    expect(config.breakGlassSeconds).toBe(4 * 60 * 60);
    expect(loadConfig({ BREAK_THE_GLASS_SECONDS: '900' }).breakGlassSeconds).toBe(900);
  });

  test('every bad variable gets its own message naming it and what is expected', () => {
    const problems = problemsOf({
      LOG_LEVEL: 'verbose',
      DATABASE_URL: 'postgres//localhost/db',
      PORT: '70000',
      AGGREGATION_THREAD: 'maybe',
      PUBLIC_URL: 'localhost:4000',
      BODY_LIMIT_BYTES: '1e6',
      TOKEN_TTL_SECONDS: '0',
      METRICS_TOKEN: 'short',
      BREAK_THE_GLASS_SECONDS: '604800',
    });
    expect(problems).toHaveLength(9);
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^LOG_LEVEL='verbose' must be one of silent, .*debug/),
        expect.stringMatching(/^DATABASE_URL='postgres\/\/localhost\/db' is not a postgres:\/\/ or postgresql:\/\/ URL/),
        expect.stringMatching(/^PORT='70000' must be a whole number from 0 to 65535/),
        expect.stringMatching(/^AGGREGATION_THREAD='maybe' must be on or off/),
        expect.stringMatching(/^PUBLIC_URL='localhost:4000' is not a http:\/\/ or https:\/\/ URL/),
        expect.stringMatching(/^BODY_LIMIT_BYTES='1e6' must be a whole number/),
        expect.stringMatching(/^TOKEN_TTL_SECONDS='0' must be a whole number ≥ 1/),
        expect.stringMatching(/^METRICS_TOKEN must be at least 16 characters/),
        expect.stringMatching(/^BREAK_THE_GLASS_SECONDS='604800' must be a whole number from 60 to 86400/),
      ]),
    );
  });

  test('a password in a malformed DATABASE_URL is not repeated in the message', () => {
    const [problem] = problemsOf({ DATABASE_URL: 'mysql://app:hunter2hunter2@db/app' });
    expect(problem).toContain("DATABASE_URL='mysql://app:***@db/app'");
    expect(problem).not.toContain('hunter2');
  });

  test('PostgreSQL URLs, socket URLs and flags in their usual spellings are accepted', () => {
    expect(problemsOf({ DATABASE_URL: 'postgresql://postgres@127.0.0.1:5432/postgres', AGGREGATION_WORKER: 'OFF', GRAPHQL_SANDBOX: 'yes' })).toEqual([]);
    expect(problemsOf({ DATABASE_URL: 'postgresql:///tributary?host=/var/run/postgresql' })).toEqual([]);
  });

  test('TRUST_PROXY: private networks by default, on/off, or addresses and ranges; a typo or a hop count is named', () => {
    expect(loadConfig({}).trustProxy).toBe('loopback,linklocal,uniquelocal');
    expect(loadConfig({ TRUST_PROXY: 'off' }).trustProxy).toBe(false);
    expect(loadConfig({ TRUST_PROXY: ' 10.0.0.0/8, 2001:db8::1 ,loopback' }).trustProxy).toBe('10.0.0.0/8,2001:db8::1,loopback');
    expect(problemsOf({ TRUST_PROXY: '10.0.0.0/33,lb.internal' })).toEqual([expect.stringMatching(/^TRUST_PROXY='10.0.0.0\/33,lb.internal' must be on, off, or addresses/)]);
    expect(problemsOf({ TRUST_PROXY: '1' })).toEqual([expect.stringMatching(/^TRUST_PROXY='1' .*not a number of hops/)]);
  });

  test("AGGREGATED_TYPES: PKB's list by default, changes to it (+Group) or a whole list; unknown names and mixed forms are named", () => {
    const pkb = loadConfig({}).aggregatedTypes;
    expect(pkb).toContain('Patient');
    expect(pkb).not.toContain('Group');
    const withGroup = loadConfig({ AGGREGATED_TYPES: '+Group, -Flag' }).aggregatedTypes;
    expect(withGroup).toContain('Group');
    expect(withGroup).not.toContain('Flag');
    expect(withGroup).toHaveLength(pkb.length);
    expect(loadConfig({ AGGREGATED_TYPES: 'Patient,Observation,Patient' }).aggregatedTypes).toEqual(['Observation', 'Patient']);
    const [unknown] = problemsOf({ AGGREGATED_TYPES: '+Group,+Cohort,+patient' });
    expect(unknown).toContain('AGGREGATED_TYPES');
    expect(unknown).toContain("'Cohort', 'patient'");
    expect(problemsOf({ AGGREGATED_TYPES: 'Patient,+Group' })[0]).toMatch(/AGGREGATED_TYPES is either a whole list .* or changes to the default/);
    expect(problemsOf({ AGGREGATED_TYPES: 'Patient,Observation' })).toEqual([]);
  });

  test('a replica needs a PostgreSQL primary, a postgres URL and a bounded wait', () => {
    expect(problemsOf({ DATABASE_REPLICA_URL: 'postgresql://replica/tributary' })).toEqual([expect.stringMatching(/^DATABASE_REPLICA_URL needs DATABASE_URL/)]);
    expect(problemsOf({ DATABASE_URL: 'postgresql://primary/tributary', DATABASE_REPLICA_URL: 'http://replica/tributary', REPLICA_MAX_WAIT_MS: '-1' })).toEqual([
      expect.stringMatching(/^DATABASE_REPLICA_URL='http:\/\/replica\/tributary' is not a postgres:\/\/ or postgresql:\/\/ URL/),
      expect.stringMatching(/^REPLICA_MAX_WAIT_MS='-1' must be a whole number from 0 to 60000/),
    ]);
    expect(problemsOf({ DATABASE_URL: 'postgresql://primary/tributary', DATABASE_REPLICA_URL: 'postgresql://replica/tributary', REPLICA_MAX_WAIT_MS: '250' })).toEqual([]);
  });

  test('the server refuses to start with a bad configuration: exit 1 and every message on stderr', async () => {
    await run(process.execPath, ['scripts/build.js', '--if-stale'], { cwd: ROOT, env: { ...process.env, NODE_OPTIONS: '' } });
    const failure = await run(process.execPath, ['dist/src/server.js'], {
      cwd: ROOT,
      env: { PATH: process.env.PATH, LOG_LEVEL: 'loud', DATABASE_URL: 'not a url', DATA_DIR: '/nonexistent/never-created' },
    }).then(
      () => undefined,
      (err: { code: number; stderr: string }) => err,
    );
    expect(failure?.code).toBe(1);
    expect(failure?.stderr).toContain('Invalid configuration (2 problems)');
    expect(failure?.stderr).toContain("LOG_LEVEL='loud' must be one of");
    expect(failure?.stderr).toContain("DATABASE_URL='not a url' is not a postgres:// or postgresql:// URL");
    expect(failure?.stderr).not.toMatch(/\n\s+at /); // no stack trace
  }, 120_000);
});
