import type { Caller } from '../../src/access/caller';
import type { Tenant, TestServer } from './testServer';

/**
 * Test helpers for the access model (issue 13): tokens carrying organisation/team/practitioner/patient/
 * break-the-glass claims, minted with the server's own token service (the real doors — clients bound to a team
 * or practitioner, NHS Login — are exercised in accessModelEndToEnd.test.ts), and teams with members written
 * straight into the tenancy tables.
 */
export type Claims = Pick<Caller, 'organizationId' | 'teamId' | 'practitionerId' | 'patientId' | 'breakGlass'>;

/** The tenant's client, acting with the given claims (same client, customer and scopes). */
export function actingAs(server: TestServer, tenant: Tenant, claims: Claims): Tenant {
  const caller = server.tokens.verify('fhir', tenant.token);
  // A patient-scoped token carries patient scopes, as the NHS Login exchange issues it.
  const scopes = claims.patientId ? ['patient/*.rs'] : caller.scopes;
  const token = server.tokens.issue('fhir', { clientId: caller.clientId, customerId: caller.customerId as string, scopes, ...claims }).access_token;
  return { ...tenant, token };
}

/**
 * A team of an organisation with its practitioners, written straight into the tenancy tables with ids the
 * test chooses (the admin API generates its own). The organisation and practitioners are created as needed,
 * the organisation under `customerId` (default: the first customer).
 */
export async function addTeam(server: TestServer, team: { id: string; organizationId: string; customerId?: string; members?: string[] }): Promise<void> {
  const sql = server.database.db.sql;
  const [customer] = team.customerId ? [{ id: team.customerId }] : await sql.query<{ id: string }[]>(`SELECT id FROM customer ORDER BY created_at, id LIMIT 1`);
  await sql.execute(`INSERT INTO organization (id, customer_id, name) VALUES ($1, $2, $1) ON CONFLICT (id) DO NOTHING`, team.organizationId, customer.id);
  await sql.execute(`INSERT INTO team (id, organization_id, name) VALUES ($1, $2, $1)`, team.id, team.organizationId);
  for (const p of team.members ?? []) {
    await sql.execute(`INSERT INTO practitioner (id, organization_id, name) VALUES ($1, $2, $1) ON CONFLICT (id) DO NOTHING`, p, team.organizationId);
    await sql.execute(`INSERT INTO team_member (team_id, practitioner_id) VALUES ($1, $2)`, team.id, p);
  }
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
