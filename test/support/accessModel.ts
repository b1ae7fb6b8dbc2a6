import type { Caller } from '../../src/access/caller';
import type { Tenant, TestServer } from './testServer';

/**
 * Test helpers for the access model (issue 13): tokens carrying organisation/team/practitioner/patient/
 * break-the-glass claims, minted with the server's own token service (their real doors are other helpers'
 * work), and teams with members written straight into the tables the "who" work owns
 * (team(id, organization_id), team_member(team_id, practitioner_id)).
 */
export type Claims = Pick<Caller, 'organizationId' | 'teamId' | 'practitionerId' | 'patientId' | 'breakGlass'>;

/** The tenant's client, acting with the given claims (same client, customer and scopes). */
export function actingAs(server: TestServer, tenant: Tenant, claims: Claims): Tenant {
  const caller = server.tokens.verify('fhir', tenant.token);
  const token = server.tokens.issue('fhir', { clientId: caller.clientId, customerId: caller.customerId as string, scopes: caller.scopes, ...claims }).access_token;
  return { ...tenant, token };
}

/**
 * A team of an organisation with its practitioners. Until the organisation/team tables of the "who" work
 * are merged in, the two columns the access filter reads are created here (test databases only).
 */
export async function addTeam(server: TestServer, team: { id: string; organizationId: string; members?: string[] }): Promise<void> {
  const sql = server.database.db.sql;
  const [exists] = await sql.query<{ t: string | null }[]>(`SELECT to_regclass('team')::text AS t`);
  if (!exists?.t) {
    await sql.execute(`CREATE TABLE team (id TEXT PRIMARY KEY, organization_id TEXT NOT NULL)`);
    await sql.execute(`CREATE TABLE team_member (team_id TEXT NOT NULL, practitioner_id TEXT NOT NULL, PRIMARY KEY (team_id, practitioner_id))`);
  }
  const columns = new Set((await sql.query<{ c: string }[]>(`SELECT column_name AS c FROM information_schema.columns WHERE table_name = 'team'`)).map((r) => r.c));
  if (columns.has('name')) await sql.execute(`INSERT INTO team (id, organization_id, name) VALUES ($1, $2, $1)`, team.id, team.organizationId);
  else await sql.execute(`INSERT INTO team (id, organization_id) VALUES ($1, $2)`, team.id, team.organizationId);
  for (const p of team.members ?? []) await sql.execute(`INSERT INTO team_member (team_id, practitioner_id) VALUES ($1, $2)`, team.id, p);
}

/** A new customer's Patient, aggregated: its aggregated id (something for a consent to be about). */
export async function aggregatedPatient(server: TestServer, nhsNumber: string): Promise<string> {
  const t = await server.provision({ name: `Patient source ${nhsNumber}`, defaultSourceOrg: 'Organization/org' });
  const org = { resourceType: 'Organization', id: 'org', identifier: [{ system: 'https://fhir.nhs.uk/Id/ods-organization-code', value: `ORG-${nhsNumber}` }] };
  const patient = { resourceType: 'Patient', id: 'pat', identifier: [{ system: 'https://fhir.nhs.uk/Id/nhs-number', value: nhsNumber }] };
  for (const r of [org, patient]) {
    const res = await t.fetch(`${r.resourceType}/${r.id}`, { method: 'PUT', body: JSON.stringify(r) });
    if (res.status >= 300) throw new Error(`${r.resourceType}: ${res.status} ${await res.text()}`);
  }
  await server.waitForAggregation();
  const outcome = (await (await t.fetch('Patient/pat/$aggregation-status')).json()) as { issue?: { diagnostics?: string }[] };
  const m = /is aggregated as Patient\/([^ .,;]+)/.exec(outcome.issue?.[0]?.diagnostics ?? '');
  if (!m) throw new Error(`Patient was not aggregated: ${JSON.stringify(outcome)}`);
  return m[1];
}
