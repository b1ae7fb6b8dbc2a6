import { constants, type NodeGCPerformanceDetail, PerformanceObserver } from 'node:perf_hooks';
import { getHeapStatistics } from 'node:v8';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Lag } from '../aggregator/worker';
import type { PoolStats } from '../store/sql';

/**
 * The server's Prometheus metrics: HTTP requests by route and status with latency histograms, the aggregation
 * queue (depth, parked items, age of the oldest item, items aggregated), database pool use, and the process
 * metrics prom-client collects (CPU, memory, heap, event-loop delay, handles). One registry per server, so
 * several servers in one process (tests) never mix their figures. Queue and pool figures are read when
 * scraped, not on a timer: an unscraped server does no extra work.
 *
 * Memory after the last major GC: the used heap of a busy server is a saw-tooth (garbage piles up for a minute
 * or two, then one full mark-compact clears it), so a scrape lands anywhere between the live data and the peak.
 * What a leak grows is the low after each full collection; `tributary_heap_used_after_major_gc_bytes` and
 * `tributary_rss_after_major_gc_bytes` are read just after each one (`npm run soak` judges them, and an alert on
 * their trend does not fire on garbage).
 */
export interface MetricsSources {
  /** The aggregation queue now (one query). */
  lag(): Promise<Lag>;
  /** Connection pool use; undefined for the embedded store, which is one connection. */
  pool(): PoolStats | undefined;
}

/** A GC entry's kind (major, minor, …); Node's types leave `detail` off the base entry class. */
const gcKind = (entry: unknown): number | undefined => (entry as { detail?: NodeGCPerformanceDetail }).detail?.kind;

// Request latencies from sub-millisecond reads to long bulk transactions.
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export class Metrics {
  readonly registry = new Registry();
  private readonly requests: Counter<'method' | 'route' | 'status'>;
  private readonly latency: Histogram<'method' | 'route' | 'status'>;
  private readonly aggregated: Counter;
  private readonly aggregationFailures: Counter;
  private readonly queueDepth: Gauge;
  private readonly parked: Gauge;
  private readonly oldestAge: Gauge;
  private readonly pool: Gauge<'state'>;
  private readonly aggregatedReads: Counter<'served_by' | 'reason'>;
  private readonly inFlight: Gauge;
  private readonly heapAfterMajorGc: Gauge;
  private readonly rssAfterMajorGc: Gauge;
  private readonly majorGcs: PerformanceObserver;

  constructor(private readonly sources: MetricsSources) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    this.requests = new Counter({
      name: 'tributary_http_requests_total',
      help: 'HTTP requests by method, route pattern (not the raw URL) and status code',
      labelNames: ['method', 'route', 'status'],
      registers,
    });
    this.latency = new Histogram({
      name: 'tributary_http_request_duration_seconds',
      help: 'HTTP request latency by method, route pattern and status code',
      labelNames: ['method', 'route', 'status'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.aggregated = new Counter({ name: 'tributary_aggregation_items_total', help: 'Work items aggregated by this process (throughput: its rate)', registers });
    this.aggregationFailures = new Counter({ name: 'tributary_aggregation_batch_failures_total', help: 'Aggregation batches that failed as a whole and are retried', registers });
    this.queueDepth = new Gauge({ name: 'tributary_aggregation_queue_depth', help: 'Work items waiting to be aggregated (not parked)', registers });
    this.parked = new Gauge({ name: 'tributary_aggregation_parked_items', help: 'Work items parked after repeated failures (see $aggregation-status)', registers });
    this.oldestAge = new Gauge({ name: 'tributary_aggregation_lag_seconds', help: 'Age of the oldest waiting work item: how far the aggregated view is behind', registers });
    this.aggregatedReads = new Counter({
      name: 'tributary_aggregated_reads_total',
      help: 'Aggregated services handed out with a replica configured, by the database that serves them (replica, primary) and why',
      labelNames: ['served_by', 'reason'],
      registers,
    });
    this.pool = new Gauge({
      name: 'tributary_db_pool_connections',
      help: 'Database connections for requests by state (PostgreSQL; max is the pool size)',
      labelNames: ['state'],
      registers,
    });
    this.inFlight = new Gauge({
      name: 'tributary_http_requests_in_flight',
      help: 'HTTP requests the server has begun (headers read) and not yet answered or lost, the scrape reading this included',
      registers,
    });
    this.heapAfterMajorGc = new Gauge({
      name: 'tributary_heap_used_after_major_gc_bytes',
      help: 'V8 heap in use (main thread) just after its last major (mark-compact) GC: the live data, without the garbage a scrape also sees',
      registers,
    });
    this.rssAfterMajorGc = new Gauge({ name: 'tributary_rss_after_major_gc_bytes', help: "Resident set size just after the main thread's last major GC", registers });
    // GC entries arrive in batches shortly after the collections (not inside them), so the figures include what
    // was allocated in between: a little above the true low, never a peak. Reading them costs microseconds, once
    // per major GC (every minute or two under load).
    // Until the first one, the figures at start (never a 0 that a trend would read as growth).
    const afterMajorGc = () => {
      this.heapAfterMajorGc.set(getHeapStatistics().used_heap_size);
      this.rssAfterMajorGc.set(process.memoryUsage.rss());
    };
    afterMajorGc();
    this.majorGcs = new PerformanceObserver((list) => {
      if (list.getEntries().some((e) => gcKind(e) === constants.NODE_PERFORMANCE_GC_MAJOR)) afterMajorGc();
    });
    this.majorGcs.observe({ entryTypes: ['gc'] });
  }

  /** Stops observing garbage collections (the server is closing). */
  close(): void {
    this.majorGcs.disconnect();
  }

  /** `route` is the route's pattern (Fastify's routeOptions.url), so the label set stays bounded. */
  observeRequest(method: string, route: string, status: number, seconds: number): void {
    const labels = { method, route, status: String(status) };
    this.requests.inc(labels);
    this.latency.observe(labels, seconds);
  }

  /** A request begun; `ended` when its response is finished or its connection gone (whichever comes first, once). */
  requestBegun(): () => void {
    this.inFlight.inc();
    let open = true;
    return () => {
      if (open) this.inFlight.dec();
      open = false;
    };
  }

  aggregatedItems(count: number): void {
    this.aggregated.inc(count);
  }

  /** An aggregated read (one REST request or GraphQL operation's service) routed with a replica configured. */
  aggregatedRead(servedBy: string, reason: string): void {
    this.aggregatedReads.inc({ served_by: servedBy, reason });
  }

  aggregationBatchFailed(): void {
    this.aggregationFailures.inc();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The text exposition format, with the queue and pool read now. */
  async scrape(): Promise<string> {
    const lag = await this.sources.lag();
    this.queueDepth.set(lag.queueDepth);
    this.parked.set(lag.parked);
    this.oldestAge.set(lag.oldestAgeMs / 1000);
    const pool = this.sources.pool();
    if (pool) {
      this.pool.set({ state: 'total' }, pool.total);
      this.pool.set({ state: 'idle' }, pool.idle);
      this.pool.set({ state: 'waiting' }, pool.waiting);
      this.pool.set({ state: 'max' }, pool.max);
    }
    return this.registry.metrics();
  }
}
