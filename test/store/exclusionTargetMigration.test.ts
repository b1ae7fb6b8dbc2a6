import { cpSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { migrate, resolveMigrationsDir } from '../../src/store/migrator';
import { type Database, openDatabase } from '../../src/store/db';

/**
 * A store upgraded by the exclusion-target migration: members excluded before `agg_member.target_type`
 * existed get the type their reason names, read once from the texts the aggregator wrote, so that a change of
 * AGGREGATED_TYPES requeues them and the report names their targets as it does for new exclusions.
 */
const TARGET = '20261207000000_exclusion_target';
let db: Database;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'migrations-'));
  for (const name of readdirSync(resolveMigrationsDir()).filter((n) => n < TARGET)) cpSync(path.join(resolveMigrationsDir(), name), path.join(dir, name), { recursive: true });
  db = await openDatabase({ dataDir: 'memory://' });
  await migrate(db, dir);
});
afterAll(async () => {
  await db.close();
  rmSync(dir, { recursive: true, force: true });
});

test('members excluded before the migration get the type their reason names; others none', async () => {
  // Rows as the previous release wrote them: reason and rule, no target type.
  const rows: [id: string, status: string, rule: string | null, reason: string | null][] = [
    ['unsupported', 'excluded', 'reference-to-unsupported-type', 'Observation.subject refers to Group, which the aggregation does not support'],
    ['stu3-name', 'excluded', 'reference-to-unsupported-type', 'Procedure.basedOn[0] refers to ProcedureRequest, which the aggregation does not support'],
    ['waiting', 'excluded', 'target-not-aggregated', 'Observation.encounter refers to Encounter/e-1.2, which is not in the aggregated record (Encounter/e-1.2 is excluded)'],
    [
      'source-org',
      'excluded',
      'source-organization-not-aggregated',
      "the endpoint's default source organisation Organization/src is not in the aggregated record (Organization needs at least one identifier to be merged)",
    ],
    ['own-reason', 'excluded', 'identifier-only-reference', "Observation.subject has no 'reference' (identifier-only references are not resolved)"],
    ['reworded', 'excluded', 'reference-to-unsupported-type', 'a wording this migration does not know'],
    ['included', 'included', null, null],
  ];
  for (const [id, status, rule, reason] of rows) {
    await db.sql.execute(`INSERT INTO agg_member (store, type, res_id, status, rule, reason) VALUES ('ep-old', 'Observation', $1, $2, $3, $4)`, id, status, rule, reason);
  }

  expect((await migrate(db)).applied[0]).toBe(TARGET);

  const after = await db.sql.query<{ res_id: string; target_type: string | null }[]>(`SELECT res_id, target_type FROM agg_member WHERE store = 'ep-old' ORDER BY res_id`);
  expect(Object.fromEntries(after.map((r) => [r.res_id, r.target_type]))).toEqual({
    unsupported: 'Group',
    'stu3-name': 'ProcedureRequest',
    waiting: 'Encounter',
    'source-org': 'Organization',
    'own-reason': null,
    // Not guessed: a reason in another wording leaves the type unknown (the member is aggregated again when it next changes).
    reworded: null,
    included: null,
  });
});
