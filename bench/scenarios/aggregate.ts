import type { Tenant } from '../lib/server';
import { ms, ratio, round, summarize } from '../lib/stats';
import { type BenchContext, type Lag, aggregationLag, bearer, getJson, notAvailable, report } from './context';
import { measuredIngest } from './ingest';

/**
 * aggregate: how far the aggregated view trails customer writes while ingest runs at full speed.
 * Lag is measured end to end, as a client sees it: a probe Patient is written on its own endpoint every
 * quarter second during the ingest; its lag is the time from the write's response (commit) to the moment
 * `$aggregation-status` stops calling it pending. The queue depth is sampled from the server's lag report.
 * Floor: the same probe's lag with the server otherwise idle.
 */
export interface AggregationObservation {
  available: true;
  probes: { committedAt: number; visibleAt?: number; parked?: boolean }[];
  idleLags: number[];
  depths: { at: number; depth: number }[];
  ingestStartedAt: number;
  ingestEndedAt: number;
  depthAtIngestEnd: number;
  drainedAt?: number;
  depthAtFinish: number;
  finishedAt: number;
}

type Unavailable = { available: false; reason: string };

const PROBE_EVERY_MS = 250;
const POLL_EVERY_MS = 50;

function probeBody(n: number) {
  // A unique identifier: the probe never merges with anything, so its lag is the pipeline's own.
  return { resourceType: 'Patient', identifier: [{ system: 'urn:bench:lag-probe', value: `${process.pid}-${Date.now()}-${n}` }], name: [{ family: 'Probe', given: [`Lag${n}`] }] };
}

type ProbeState = 'pending' | 'visible' | 'parked';

export class AggregationObserver {
  private running = true;
  private writing = true;
  private readonly loops: Promise<void>[] = [];
  private readonly probes: { id: string; committedAt: number; visibleAt?: number; parked?: boolean }[] = [];
  private readonly depths: { at: number; depth: number }[] = [];
  private nextProbe = 0;
  private ingestStartedAt = Date.now();
  private ingestEndedAt = 0;
  private depthAtIngestEnd = 0;

  private constructor(
    private readonly ctx: BenchContext,
    private probeTenant: Tenant,
  ) {}

  /** Null with a reason when the server has no aggregation to observe (yet). */
  static async start(ctx: BenchContext): Promise<AggregationObserver | Unavailable> {
    if (!ctx.settings.aggregation || ctx.server.env.AGGREGATION_WORKER === 'off') return { available: false, reason: 'the aggregation worker is off (--aggregation off)' };
    const lag = await aggregationLag(ctx).catch(() => null);
    if (!lag) return { available: false, reason: 'the server reports no aggregation queue (GET /admin/aggregation, /healthz)' };
    const probeTenant = await ctx.server.tenant('bench lag probes');
    const observer = new AggregationObserver(ctx, probeTenant);
    const first = await observer.writeProbe(false);
    const state = first ? await observer.state(first) : undefined;
    if (!first || !state) return { available: false, reason: 'no $aggregation-status on customer endpoints to observe visibility' };
    observer.ingestStartedAt = Date.now();
    observer.loops.push(observer.sampleLoop(), observer.writeLoop(), observer.pollLoop());
    return observer;
  }

  private async token(): Promise<Tenant> {
    if (Date.now() - this.probeTenant.mintedAt > 120_000) this.probeTenant = await this.ctx.server.remint(this.probeTenant);
    return this.probeTenant;
  }

  /** Writes one probe; returns its id (and records it) or undefined when the write failed. */
  private async writeProbe(record = true): Promise<{ id: string; committedAt: number } | undefined> {
    const t = await this.token();
    const res = await fetch(`${t.base}/Patient`, {
      method: 'POST',
      headers: { ...bearer(t), 'content-type': 'application/fhir+json' },
      body: JSON.stringify(probeBody(this.nextProbe++)),
    });
    const committedAt = Date.now();
    await res.arrayBuffer();
    const id = (res.headers.get('location') ?? '').split('/Patient/')[1]?.split('/')[0];
    if (res.status !== 201 || !id) return undefined;
    const probe = { id, committedAt };
    if (record) this.probes.push(probe);
    return probe;
  }

  /** `pending` until the aggregator has processed the probe; undefined when the server cannot say. */
  private async state(probe: { id: string }): Promise<ProbeState | undefined> {
    const t = await this.token();
    const { status, json } = await getJson(`${t.base}/Patient/${probe.id}/$aggregation-status`, bearer(t));
    if (status !== 200 || json?.resourceType !== 'OperationOutcome') return undefined;
    const text = String(json.issue?.map((i: { diagnostics?: string }) => i.diagnostics).join(' ') ?? '');
    if (/pending/i.test(text)) return 'pending';
    if (/parked/i.test(text)) return 'parked';
    return 'visible';
  }

  private async sampleLoop(): Promise<void> {
    while (this.running) {
      const lag: Lag | null = await aggregationLag(this.ctx).catch(() => null);
      if (lag) this.depths.push({ at: Date.now(), depth: lag.queueDepth });
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  private async writeLoop(): Promise<void> {
    while (this.running && this.writing) {
      await this.writeProbe().catch(() => undefined);
      await new Promise((r) => setTimeout(r, PROBE_EVERY_MS));
    }
  }

  /** Probes become visible roughly in commit order: check the oldest pending ones, a few per round. */
  private async pollLoop(): Promise<void> {
    while (this.running) {
      let checked = 0;
      for (const probe of this.probes) {
        if (probe.visibleAt || checked >= 5) continue;
        checked++;
        const state = await this.state(probe).catch(() => undefined);
        if (state === 'pending' || state === undefined) break;
        probe.visibleAt = Date.now();
        probe.parked = state === 'parked';
      }
      await new Promise((r) => setTimeout(r, POLL_EVERY_MS));
    }
  }

  ingestEnded(depth?: number): void {
    this.writing = false;
    this.ingestEndedAt = Date.now();
    const last = this.depths[this.depths.length - 1];
    this.depthAtIngestEnd = depth ?? last?.depth ?? 0;
  }

  /** Waits for the queue to drain and every probe to show (bounded), then measures the idle floor. */
  async finish(drainTimeoutMs: number, idleProbes: number): Promise<AggregationObservation> {
    const lag = await aggregationLag(this.ctx).catch(() => null);
    if (lag && !this.ingestEndedAt) this.ingestEnded(lag.queueDepth);
    let drainedAt: number | undefined;
    for (;;) {
      const now = await aggregationLag(this.ctx).catch(() => null);
      const probesDone = this.probes.every((p) => p.visibleAt);
      if (now && now.queueDepth === 0) drainedAt ??= Date.now();
      if ((drainedAt && probesDone) || Date.now() - this.ingestEndedAt > drainTimeoutMs) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    this.running = false;
    await Promise.all(this.loops);
    const depthAtFinish = (await aggregationLag(this.ctx).catch(() => null))?.queueDepth ?? 0;
    const idleLags: number[] = [];
    if (drainedAt) {
      for (let i = 0; i < idleProbes; i++) {
        const probe = await this.writeProbe(false);
        if (!probe) break;
        for (;;) {
          const state = await this.state(probe);
          if (state !== 'pending' || Date.now() - probe.committedAt > 30_000) break;
          await new Promise((r) => setTimeout(r, 5));
        }
        idleLags.push(Date.now() - probe.committedAt);
      }
    }
    return {
      available: true,
      probes: this.probes.map(({ committedAt, visibleAt, parked }) => ({ committedAt, visibleAt, parked })),
      idleLags,
      depths: this.depths,
      ingestStartedAt: this.ingestStartedAt,
      ingestEndedAt: this.ingestEndedAt,
      depthAtIngestEnd: this.depthAtIngestEnd,
      drainedAt,
      depthAtFinish,
      finishedAt: Date.now(),
    };
  }
}

export async function aggregateScenario(ctx: BenchContext): Promise<void> {
  const ingest = await measuredIngest(ctx);
  const obs = ctx.aggregation;
  if (!ingest.available || !obs) {
    const reason = !ingest.available ? ingest.reason : (ctx.aggregationUnavailable ?? 'not observed');
    notAvailable(ctx, 'aggregate.lag.p99', 'aggregate', 'write→visible lag under full-speed ingest', reason);
    notAvailable(ctx, 'aggregate.queue.max', 'aggregate', 'queue depth during ingest', reason);
    return;
  }
  const end = obs.finishedAt;
  // A probe still pending at the end counts with the time it has waited so far: a lower bound, said so.
  const lags = obs.probes.map((p) => (p.visibleAt ?? end) - p.committedAt);
  const unseen = obs.probes.filter((p) => !p.visibleAt).length;
  const parked = obs.probes.filter((p) => p.parked).length;
  const loaded = summarize(lags);
  const idle = summarize(obs.idleLags);
  const probeNote = [unseen ? `${unseen} of ${lags.length} probes still pending after the drain timeout (counted as lower bounds)` : '', parked ? `${parked} probes parked` : '']
    .filter(Boolean)
    .join('; ');
  report(ctx, {
    id: 'aggregate.lag.p50',
    scenario: 'aggregate',
    metric: `write→visible lag p50 under full-speed ingest (${lags.length} probes; floor: idle server)`,
    value: round(loaded.p50),
    unit: 'ms',
    floor: round(idle.p50),
    ratio: ratio(loaded.p50, idle.p50),
  });
  report(ctx, {
    id: 'aggregate.lag.p99',
    scenario: 'aggregate',
    metric: 'write→visible lag p99 under full-speed ingest (floor: idle server)',
    value: round(loaded.p99),
    unit: `ms (p95 ${ms(loaded.p95)})`,
    floor: round(idle.p99),
    ratio: ratio(loaded.p99, idle.p99),
    target: '< 1,000 ms',
    ...(probeNote ? { note: probeNote } : {}),
    // When in the ingest the slow probes were written (a start-up transient reads differently from a steady state).
    samples: obs.probes.map((p, i) => [p.committedAt - obs.ingestStartedAt, lags[i]]),
  });
  const during = obs.depths.filter((d) => d.at <= obs.ingestEndedAt);
  const maxDepth = Math.max(0, ...during.map((d) => d.depth));
  const ingestSeconds = (obs.ingestEndedAt - obs.ingestStartedAt) / 1000;
  const growth = ingestSeconds > 0 ? (obs.depthAtIngestEnd - (during[0]?.depth ?? 0)) / ingestSeconds : 0;
  report(ctx, { id: 'aggregate.queue.max', scenario: 'aggregate', metric: 'max queue depth during ingest', value: maxDepth, unit: 'items', target: 'bounded' });
  report(ctx, {
    id: 'aggregate.queue.growth',
    scenario: 'aggregate',
    metric: 'queue growth during ingest (> 0: the aggregator falls behind)',
    value: round(growth),
    unit: 'items/s',
    target: '≈ 0',
  });
  const drainMs = (obs.drainedAt ?? obs.finishedAt) - obs.ingestEndedAt;
  report(ctx, {
    id: 'aggregate.drain.ms',
    scenario: 'aggregate',
    metric: 'time to drain the queue after ingest',
    value: round(drainMs),
    unit: 'ms',
    ...(obs.drainedAt ? {} : { note: `not drained: ${obs.depthAtFinish} items left at the timeout` }),
  });
  // Every accepted write is one work item: items aggregated from the ingest's start to the drain's end.
  const items = ingest.resources + obs.probes.length - (obs.drainedAt ? 0 : obs.depthAtFinish);
  const spanS = ((obs.drainedAt ?? obs.finishedAt) - obs.ingestStartedAt) / 1000;
  const rate = spanS > 0 ? items / spanS : null;
  report(ctx, {
    id: 'aggregate.rate',
    scenario: 'aggregate',
    metric: 'aggregation throughput, ingest start to drained (floor: ingest rate; 1 = keeps up)',
    value: round(rate),
    unit: 'items/s',
    floor: round(ingest.rate),
    ratio: ratio(rate, ingest.rate),
    target: '≥ 1× ingest',
  });
}
