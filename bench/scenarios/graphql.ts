import { runCannon } from '../lib/load';
import { startServer, type Tenant } from '../lib/server';
import { startSqlCounter } from '../lib/sqlCounter';
import { ms, ratio, round } from '../lib/stats';
import { type BenchContext, backlogNote, bearer, durationMs, ensureDataset, getJson, notAvailable, report, search, settle, tenant } from './context';

/**
 * graphql: the patient-record query (a patient, its Observations with their Encounters, its
 * MedicationRequests with their requesters) through /graphql → p50/p95, against its floor: the one REST
 * search returning the same resources with _revinclude/_include:iterate. Both on the customer endpoint, so
 * the figure does not wait on aggregation. On PostgreSQL, SQL statements per request are counted by a
 * second server process whose database connection runs through a counting proxy, for the smallest and the
 * largest record among ten patients: a constant count means the DataLoaders batch.
 */
const QUERY = `query ($ep: ID, $id: ID!) { Patient(id: $id, _endpoint: $ep) { id name { family given } birthDate
  ObservationList(_reference: subject, _count: 1000) { id status code { text coding { system code } } valueQuantity { value unit } effectiveDateTime encounter { resource { ... on Encounter { id status period { start end } } } } }
  MedicationRequestList(_reference: subject, _count: 1000) { id status medicationCodeableConcept { text } authoredOn requester { resource { ... on Practitioner { id name { family } } } } } } }`;

function restQuery(patientId: string): string {
  return `Patient?_id=${patientId}&_revinclude=Observation:subject&_revinclude=MedicationRequest:subject&_include:iterate=Observation:encounter&_include:iterate=MedicationRequest:requester`;
}

interface Record_ {
  id: string;
  observations: number;
}

/** Ten patients of the dataset with their Observation counts, smallest first. */
async function candidates(ctx: BenchContext): Promise<Record_[]> {
  const t = await tenant(ctx);
  const { json } = await getJson(`${t.base}/Patient?_count=10`, bearer(t));
  const ids = ((json?.entry ?? []) as { resource: { id: string } }[]).map((e) => e.resource.id);
  const out: Record_[] = [];
  for (const id of ids) {
    const counted = await getJson(`${t.base}/Observation?subject=Patient/${id}&_summary=count`, bearer(t));
    out.push({ id, observations: typeof counted.json?.total === 'number' ? counted.json.total : 0 });
  }
  return out.sort((a, b) => a.observations - b.observations);
}

export async function graphqlScenario(ctx: BenchContext): Promise<void> {
  const queued = await settle(ctx);
  const data = await ensureDataset(ctx, Math.min(ctx.settings.patients, 10));
  const t = await tenant(ctx);
  const probe = await fetch(`${ctx.server.url}/graphql`, {
    method: 'POST',
    headers: { ...bearer(t), 'content-type': 'application/json' },
    body: JSON.stringify({ query: '{ __typename }' }),
  }).catch(() => undefined);
  const searchable = data.available ? await search(ctx) : data;
  const reason = !probe || probe.status === 404 ? 'the server has no /graphql' : !searchable.available ? searchable.reason : '';
  if (reason) {
    notAvailable(ctx, 'graphql.record.p50', 'graphql', 'patient-record query vs REST', reason);
    return;
  }
  const patients = await candidates(ctx);
  if (!patients.length) throw new Error('no patients to query');
  const typical = patients[Math.floor(patients.length / 2)];
  const gql = (id: string, base = ctx.server.url, who: Tenant = t) => ({
    method: 'POST',
    url: `${base}/graphql`,
    headers: { ...bearer(who), 'content-type': 'application/json' },
    body: JSON.stringify({ query: QUERY, variables: { ep: t.endpointId, id } }),
  });
  const rest = (id: string, base = t.base, who: Tenant = t) => ({ url: `${base}/${restQuery(id)}`, headers: bearer(who) });

  // Same data both ways? Count what each returns for the typical record.
  const one = gql(typical.id);
  const g = (await (await fetch(one.url, { method: one.method, headers: one.headers, body: one.body })).json()) as {
    data?: { Patient?: { ObservationList?: unknown[]; MedicationRequestList?: unknown[] } };
    errors?: { message: string }[];
  };
  if (g.errors?.length) throw new Error(`GraphQL errors: ${g.errors[0].message}`);
  const r = await getJson(rest(typical.id).url, bearer(t));
  const restTypes = ((r.json?.entry ?? []) as { resource: { resourceType: string } }[]).map((e) => e.resource.resourceType);
  const same =
    (g.data?.Patient?.ObservationList?.length ?? 0) === restTypes.filter((x) => x === 'Observation').length &&
    (g.data?.Patient?.MedicationRequestList?.length ?? 0) === restTypes.filter((x) => x === 'MedicationRequest').length;

  const duration = durationMs(ctx, 3_000, 10_000);
  const warmup = Math.min(2_000, Math.max(300, duration / 4));
  await runCannon({ requests: [gql(typical.id), rest(typical.id)], connections: 4, durationMs: warmup });
  const gRun = await runCannon({ requests: [gql(typical.id)], connections: 4, durationMs: duration });
  const rRun = await runCannon({ requests: [rest(typical.id)], connections: 4, durationMs: duration });
  const failures = gRun.errors + gRun.statusErrors + rRun.errors + rRun.statusErrors;
  const note = [same ? '' : 'GraphQL and REST returned different counts', failures ? `${failures} failed requests` : '', backlogNote(queued).note ?? ''].filter(Boolean).join('; ');
  report(ctx, {
    id: 'graphql.record.p50',
    scenario: 'graphql',
    metric: `patient-record query p50 (${typical.observations} Observations; floor: the REST _include/_revinclude request)`,
    value: round(gRun.p50, 2),
    unit: `ms (p95 ${ms(gRun.p95)}; REST p95 ${ms(rRun.p95)})`,
    floor: round(rRun.p50, 2),
    ratio: ratio(gRun.p50, rRun.p50),
    target: '≤ 1.5× REST',
    ...(note ? { note } : {}),
  });

  if (ctx.store !== 'postgres' || !ctx.databaseUrl) {
    notAvailable(ctx, 'graphql.statements', 'graphql', 'SQL statements per request', 'counted on PostgreSQL only (the embedded store is one process)');
    return;
  }
  const counter = await startSqlCounter(ctx.databaseUrl);
  const counted = await startServer({ env: { DATABASE_URL: counter.url, AGGREGATION_WORKER: 'off', DATABASE_POOL_SIZE: '2' } });
  try {
    // Tokens are minted for one server's public URL (their audience): the counted server mints its own.
    const who = await counted.remint(t);
    const perRequest = async (req: { method?: string; url: string; headers: Record<string, string>; body?: string }) => {
      const send = async () => {
        const res = await fetch(req.url, { method: req.method ?? 'GET', headers: req.headers, body: req.body });
        const body = await res.text();
        // A refused request runs no SQL: it would read as a count of 0.
        if (!res.ok) throw new Error(`${req.url} → ${res.status} ${body.slice(0, 200)}`);
      };
      await send();
      await send();
      const before = counter.statements();
      for (let i = 0; i < 5; i++) await send();
      return round((counter.statements() - before) / 5, 1);
    };
    const small = patients[0];
    const large = patients[patients.length - 1];
    const cBase = `${counted.url}/fhir/customer/${t.endpointId}`;
    for (const [label, p] of [
      ['smallest', small],
      ['largest', large],
    ] as const) {
      const gCount = await perRequest(gql(p.id, counted.url, who));
      const rCount = await perRequest(rest(p.id, cBase, who));
      report(ctx, {
        id: `graphql.statements.${label}`,
        scenario: 'graphql',
        metric: `SQL statements per request, ${label} of 10 records (${p.observations} Observations; floor: REST)`,
        value: gCount,
        unit: 'statements',
        floor: rCount,
        ratio: ratio(gCount, rCount),
        target: 'constant',
      });
    }
  } finally {
    await counted.stop();
    await counter.close();
  }
}
