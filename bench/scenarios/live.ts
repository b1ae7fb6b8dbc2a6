import { createClient, type Client } from 'graphql-ws';
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
  // Without the Synthea data (or with an ingest that fails) the latency is still measured, and says so.
  const ingest = loadPatients(ctx, from, from + (tiny ? 1 : quick ? 4 : 40)).catch((err: Error) => void (ingestFailure = err.message.slice(0, 200)));
  let ingesting = true;
  void ingest.finally(() => (ingesting = false));
  for (let i = 0; i < probes; i++) {
    const code = `p${i}-${Date.now()}`;
    const got = new Promise<void>((resolve) => waiting.set(code, resolve));
    const started = performance.now();
    await put(probe.base, probe.token, {
      resourceType: 'Observation',
      id: `live-${i}`,
      status: 'final',
      code: { coding: [{ system: PROBE_CODE, code }] },
      subject: { reference: 'Patient/live' },
      valueQuantity: { value: i, unit: '1' },
    });
    const timeout = new Promise<void>((resolve) => setTimeout(resolve, 30_000).unref());
    await Promise.race([got, timeout]);
    const at = arrived.get(code);
    if (at !== undefined) samples.push(at - started);
    if (!ingesting && i >= 2) break;
  }
  await ingest;
  dispose();
  await client.dispose();
  const s = summarize(samples);
  report(ctx, {
    id: 'live.latency',
    scenario: 'live',
    metric: `write → subscriber event p99 under ingest (${s.count} probes; p50 ${round(s.p50)} ms, max ${round(s.max)} ms)`,
    value: round(s.p99),
    unit: 'ms',
    target: '< 1500',
    ...(ingestFailure
      ? { note: `measured WITHOUT ingest: ${ingestFailure}` }
      : s.count < probes
        ? { note: `${probes - s.count} probes got no event within 30 s (or ingest ended first)` }
        : {}),
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
