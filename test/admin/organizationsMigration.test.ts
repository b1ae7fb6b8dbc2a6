import { cpSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { migrate, resolveMigrationsDir } from '../../src/store/migrator';
import { type Database, openDatabase } from '../../src/store/db';

/** Customers and clients that existed before organisations get a default organisation and team, and act for it. */
const ORGANIZATIONS = '20261205100000_organizations';
let db: Database;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'migrations-'));
  for (const name of readdirSync(resolveMigrationsDir()).filter((n) => n < ORGANIZATIONS))
    cpSync(path.join(resolveMigrationsDir(), name), path.join(dir, name), { recursive: true });
  db = await openDatabase({ dataDir: 'memory://' });
  await migrate(db, dir);
});
afterAll(async () => {
  await db.close();
  rmSync(dir, { recursive: true, force: true });
});

test('existing customers get a default organisation with a default team, and their clients act for it', async () => {
  await db.sql.execute(`INSERT INTO customer (id, name) VALUES ('cus-old1', 'Old One'), ('cus-old2', 'Old Two')`);
  await db.sql.execute(
    `INSERT INTO api_client (id, customer_id, family, secret_hash) VALUES ('cli-a', 'cus-old1', 'fhir', 'x'), ('cli-b', 'cus-old2', 'legacy', 'x'), ('cli-c', NULL, 'fhir', 'x')`,
  );

  expect((await migrate(db)).applied).toContain(ORGANIZATIONS);

  const organizations = await db.sql.query<{ id: string; customer_id: string; name: string; default_team_id: string; public_id: string }[]>(
    `SELECT o.id, o.customer_id, o.name, o.default_team_id, o.public_id::text FROM organization o ORDER BY o.customer_id`,
  );
  expect(organizations.map((o) => [o.customer_id, o.name])).toEqual([
    ['cus-old1', 'Old One'],
    ['cus-old2', 'Old Two'],
  ]);
  expect(new Set(organizations.map((o) => o.public_id)).size).toBe(2);
  const customers = await db.sql.query<{ id: string; default_organization_id: string }[]>(`SELECT id, default_organization_id FROM customer ORDER BY id`);
  expect(customers.map((c) => c.default_organization_id)).toEqual(organizations.map((o) => o.id));
  const teams = await db.sql.query<{ id: string; organization_id: string }[]>(`SELECT id, organization_id FROM team ORDER BY organization_id`);
  expect(teams.map((t) => t.id).sort()).toEqual(organizations.map((o) => o.default_team_id).sort());

  const clients = await db.sql.query<{ id: string; organization_id: string | null }[]>(`SELECT id, organization_id FROM api_client ORDER BY id`);
  expect(clients).toEqual([
    { id: 'cli-a', organization_id: organizations[0].id },
    { id: 'cli-b', organization_id: organizations[1].id },
    { id: 'cli-c', organization_id: null },
  ]);
});
