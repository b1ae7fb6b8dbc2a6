import { createClient, type Client } from 'graphql-ws';
import pg from 'pg';
import WebSocket from 'ws';
import { round, summarize } from '../lib/stats';
import { type BenchContext, loadPatients, report } from './context';

/**
 * live (issue 18): the GraphQL subscriptions of the live record.
 * - `live.latency`: write → subscriber event, p99, while patients are ingested at full speed: a probe client
 *   writes one Observation at a time on its own endpoint (bounded count) and times each until its
 *   `resourceChanged` event arrives over graphql-ws. Target p99 < 1.5 s.
 * - `live.idle`: the server's extra RSS for N idle subscribers (one WebSocket and one `patientRecordChanged`
 *   each). Target: 5,000 within 500 MB.
 * Short in quick mode (a few patients, 5 probes, 500 subscribers).
 */
const PROBE_CODE = 'urn:bench:live';

function wsClient(ctx: BenchContext, token: string): Client {
  return createClient({
    url: `${ctx.server.url.replace(/^http/, 'ws')}/graphql`,
    webSocketImpl: WebSocket,
    connectionParams: { Authorization: `Bearer ${token}` },
    retryAttempts: 0,
    lazy: false,
  });
}

async function put(url: string, token: string, resource: Record<string, unknown>): Promise<void> {
  const res = await fetch(`${url}/${resource.resourceType}/${resource.id}`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/fhir+json' },
    body: JSON.stringify(resource),
  });
  if (res.status >= 300) throw new Error(`PUT ${resource.resourceType}/${resource.id} → ${res.status} ${(await res.text()).slice(0, 200)}`);
}

export async function liveScenario(ctx: BenchContext): Promise<void> {
  const quick = ctx.settings.quick;
  // The harness's own test run (a fixed, short duration): the smallest sizes that still produce both figures.
  const tiny = ctx.settings.durationMs !== undefined && ctx.settings.durationMs < 2000;
  const probe = await ctx.server.tenant('live probe');
  await put(probe.base, probe.token, { resourceType: 'Patient', id: 'live', identifier: [{ system: PROBE_CODE, value: 'live-patient' }], name: [{ family: 'Live' }] });

  // Latency: one subscriber, probes written one at a time while an ingest runs beside them.
  const client = wsClient(ctx, probe.token);
  const arrived = new Map<string, number>();
  const waiting = new Map<string, () => void>();
  const dispose = client.subscribe<{ resourceChanged: { resource: { code?: { coding?: { code?: string }[] } } | null } }>(
    { query: `subscription { resourceChanged(type: "Observation", criteria: "code=${PROBE_CODE}|") { resource { ... on Observation { code { coding { code } } } } } }` },
    {
      next: (r) => {
        const code = r.data?.resourceChanged.resource?.code?.coding?.[0]?.code;
        if (!code) return;
        arrived.set(code, performance.now());
        waiting.get(code)?.();
      },
      error: () => undefined,
      complete: () => undefined,
    },
  );
  const probes = tiny ? 3 : quick ? 5 : 40;
  const samples: number[] = [];
  const from = ctx.dataset.patients;
  let ingestFailure: string | undefined;
  // The ingest goes on, a few bundles at a time, until every probe is taken (or a cap is reached), so that
  // each probe is measured under load; in the harness's tiny run one patient is enough.
  const chunk = Math.max(1, ctx.settings.ingestConcurrency * 4);
  const cap = tiny ? 1 : quick ? 4 : 400;
  let probing = true;
  let loaded = 0;
  const ingest = (async () => {
    while (loaded < cap && (probing || loaded === 0)) {
      const to = Math.min(cap, loaded + chunk);
      const outcome = await loadPatients(ctx, from + loaded, from + to);
      const sent = to - loaded;
      loaded = to;
      if (outcome.failed === sent) throw new Error(outcome.failures[0]?.body ?? 'every bundle was refused');
    }
  })().catch((err: Error) => void (ingestFailure = err.message.slice(0, 200)));
  // Without the Synthea data (or with an ingest that fails) the latency is still measured, and says so.
  let ingesting = true;
  void ingest.finally(() => (ingesting = false));
  let duringIngest = 0;
  /** Wall-clock times of each probe: started, written (the PUT answered), event arrived. */
  const timeline: { id: string; started: number; written: number; arrived?: number }[] = [];
  for (let i = 0; i < probes; i++) {
    const code = `p${i}-${Date.now()}`;
    const got = new Promise<void>((resolve) => waiting.set(code, resolve));
    const started = performance.now();
    const under = ingesting;
    const wall = Date.now();
    await put(probe.base, probe.token, {
      resourceType: 'Observation',
      id: `live-${i}`,
      status: 'final',
      code: { coding: [{ system: PROBE_CODE, code }] },
      subject: { reference: 'Patient/live' },
      valueQuantity: { value: i, unit: '1' },
    });
    const written = Date.now();
    const timeout = new Promise<void>((resolve) => setTimeout(resolve, 30_000).unref());
    await Promise.race([got, timeout]);
    const at = arrived.get(code);
    if (at !== undefined) samples.push(at - started);
    timeline.push({ id: `live-${i}`, started: wall, written, arrived: at !== undefined ? wall + (at - started) : undefined });
    if (under && ingesting && at !== undefined) duringIngest++;
    if (!ingesting && i >= 2) break;
  }
  probing = false;
  await ingest;
  dispose();
  await client.dispose();
  const s = summarize(samples);
  const parts = await latencyParts(ctx, probe.endpointId, timeline);
  const warning = ingestFailure
    ? `measured WITHOUT ingest: ${ingestFailure}`
    : s.count < probes
      ? `${probes - s.count} probes got no event within 30 s (or ingest ended first)`
      : undefined;
  const note = [warning, parts].filter(Boolean).join('; ');
  report(ctx, {
    id: 'live.latency',
    scenario: 'live',
    metric: `write → subscriber event p99 under ingest (${s.count} probes, ${duringIngest} of them wholly during the ingest of ${loaded} patients; p50 ${round(s.p50)} ms, max ${round(s.max)} ms)`,
    value: round(s.p99),
    unit: 'ms',
    target: '< 1500',
    ...(note ? { note } : {}),
  });

  // Idle subscribers: RSS before and after N connections with one subscription each.
  const n = tiny ? 50 : quick ? 500 : 5000;
  const before = ctx.server.rssMb();
  const clients: Client[] = [];
  const disposers: (() => void)[] = [];
  let subscribed = 0;
  // A fresh token: the latency phase (beside an ingest) can outlast the probe tenant's first one.
  const idle = await ctx.server.remint(probe);
  const patientId = await aggregatedPatient(ctx, idle.token);
  for (let i = 0; i < n; i += 50) {
    const batch = Array.from({ length: Math.min(50, n - i) }, () => {
      const c = wsClient(ctx, idle.token);
      clients.push(c);
      return new Promise<void>((resolve) => {
        c.on('connected', () => resolve());
        disposers.push(
          c.subscribe(
            { query: `subscription { patientRecordChanged(patient: "${patientId}") { cursor } }` },
            { next: () => undefined, error: () => resolve(), complete: () => undefined },
          ),
        );
      });
    });
    await Promise.all(batch);
    subscribed += batch.length;
  }
  // Let the server settle (garbage collection after the subscribe storm) before reading its RSS.
  await new Promise((r) => setTimeout(r, tiny ? 200 : 2000));
  const after = ctx.server.rssMb();
  for (const d of disposers) d();
  await Promise.all(clients.map((c) => c.dispose()));
  report(ctx, {
    id: 'live.idle',
    scenario: 'live',
    metric: `extra server RSS for ${subscribed} idle subscribers (one WebSocket and subscription each)`,
    value: before !== null && after !== null ? round(after - before) : null,
    unit: 'MB',
    target: n >= 5000 ? '≤ 500 for 5,000' : `≤ ${round((500 * n) / 5000)} (500 MB per 5,000)`,
  });
}

/**
 * Where the probes' time went, from the database (PostgreSQL only): the write (the PUT until answered:
 * admission and commit); the wait until the aggregation transaction that took it began (`agg_change.at` is
 * that transaction's start); the time until its copy was written in that transaction (the copy's
 * `last_updated`); and the rest (the rest of the batch, its commit, the NOTIFY and the subscriber's judging
 * and delivery). p50/p99 of each, in ms; the server's and the bench's clocks are the machine's one clock.
 */
async function latencyParts(ctx: BenchContext, store: string, timeline: { id: string; started: number; written: number; arrived?: number }[]): Promise<string | undefined> {
  if (!ctx.databaseUrl || !timeline.length) return undefined;
  const client = new pg.Client({ connectionString: ctx.databaseUrl });
  try {
    await client.connect();
    const { rows } = await client.query<{ res_id: string; began: number; copied: number }>(
      `SELECT m.res_id, (extract(epoch FROM min(c.at)) * 1000)::float8 AS began, (extract(epoch FROM min(coalesce(h.last_updated, r.last_updated))) * 1000)::float8 AS copied
         FROM agg_member m JOIN agg_change c ON c.type = m.type AND c.res_id = m.agg_id
         JOIN resource r ON r.store = 'aggregated' AND r.type = m.type AND r.id = m.agg_id
         LEFT JOIN resource_history h ON h.resource_pk = r.pk AND h.version_id = 1
        WHERE m.store = $1 AND m.type = 'Observation' AND m.res_id = ANY($2::text[]) GROUP BY m.res_id`,
      [store, timeline.map((t) => t.id)],
    );
    const times = new Map(rows.map((r) => [r.res_id, { began: Number(r.began), copied: Number(r.copied) }]));
    const parts = { write: [] as number[], queued: [] as number[], copying: [] as number[], rest: [] as number[] };
    for (const t of timeline) {
      const at = times.get(t.id);
      if (t.arrived === undefined || at === undefined) continue;
      parts.write.push(t.written - t.started);
      parts.queued.push(at.began - t.written);
      parts.copying.push(at.copied - at.began);
      parts.rest.push(t.arrived - at.copied);
    }
    const fmt = (name: string, xs: number[]) => `${name} ${round(summarize(xs).p50)}/${round(summarize(xs).p99)}`;
    return `p50/p99 ms: ${fmt('write', parts.write)}, ${fmt('to its aggregation batch', parts.queued)}, ${fmt('batch start to copy', parts.copying)}, ${fmt('copy to event (commit, NOTIFY, subscriber)', parts.rest)}`;
  } catch (err) {
    return `latency parts unavailable: ${(err as Error).message.slice(0, 100)}`;
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function aggregatedPatient(ctx: BenchContext, token: string): Promise<string> {
  // Up to two minutes: behind a loaded ingest (or a loaded machine) the aggregation can take that long.
  for (let i = 0; i < 240; i++) {
    const res = await fetch(`${ctx.server.url}/fhir/aggregated/Patient?identifier=${encodeURIComponent(`${PROBE_CODE}|live-patient`)}`, {
      headers: { authorization: `Bearer ${token}` },
    });
    const id = ((await res.json()) as { entry?: { resource: { id: string } }[] }).entry?.[0]?.resource.id;
    if (id) return id;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error('the live probe patient was never aggregated');
}
