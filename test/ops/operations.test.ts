import { createServer } from 'node:net';
import parsePrometheusTextFormat, { type MetricFamily } from 'parse-prometheus-text-format';
import { startTestServer, type TestServer } from '../support/testServer';

/** /metrics scraped and read by a Prometheus text-format parser, /healthz and /readyz, through the real server. */
const family = (families: MetricFamily[], name: string) => {
  const found = families.find((f) => f.name === name);
  if (!found) throw new Error(`no metric family ${name} in ${families.map((f) => f.name).join(', ')}`);
  return found;
};

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

describe('operations endpoints', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => server.close());

  const scrape = async (token = server.adminToken) => {
    const res = await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/plain');
    return parsePrometheusTextFormat(await res.text());
  };

  test('/metrics is not public: without a token it is 401, with the admin token (no METRICS_TOKEN set) it answers', async () => {
    const anonymous = await fetch(`${server.url}/metrics`);
    expect(anonymous.status).toBe(401);
    expect(((await anonymous.json()) as { resourceType: string }).resourceType).toBe('OperationOutcome');
    expect((await fetch(`${server.url}/metrics`, { headers: { authorization: 'Bearer wrong' } })).status).toBe(401);
    await scrape();
  });

  test('requests are counted by route pattern and status, with latency buckets', async () => {
    const tenant = await server.provision();
    const created = await tenant.fetch('Patient', { method: 'POST', body: JSON.stringify({ resourceType: 'Patient', identifier: [{ system: 'urn:x', value: '1' }] }) });
    expect(created.status).toBe(201);
    const { id } = (await created.json()) as { id: string };
    for (let i = 0; i < 3; i++) expect((await tenant.fetch(`Patient/${id}`)).status).toBe(200);
    expect((await tenant.fetch('Patient/does-not-exist')).status).toBe(404);
    expect((await fetch(`${server.url}/no/such/path/${id}`)).status).toBe(404);

    const families = await scrape();
    const requests = family(families, 'tributary_http_requests_total');
    expect(requests.type).toBe('COUNTER');
    const routes = requests.metrics.map((m) => m.labels?.route ?? '');
    // The route's pattern, never the URL: no endpoint or resource id in any label.
    expect(routes.some((r) => r.includes(tenant.endpointId) || r.includes(id))).toBe(false);
    expect(routes).toContain('(unmatched)');
    const count = (status: string, method?: string) =>
      requests.metrics
        .filter((m) => m.labels?.route?.startsWith('/fhir/customer/:endpointId') && m.labels?.status === status && (!method || m.labels?.method === method))
        .reduce((n, m) => n + Number(m.value), 0);
    expect(count('200', 'GET')).toBeGreaterThanOrEqual(3);
    expect(count('201', 'POST')).toBe(1);
    expect(count('404')).toBe(1);
    // Latency histograms over the same labels (this parser folds a histogram's series into one bucket set).
    const latency = family(families, 'tributary_http_request_duration_seconds');
    expect(latency.type).toBe('HISTOGRAM');
    expect(Object.keys(latency.metrics[0].buckets ?? {})).toEqual(expect.arrayContaining(['0.005', '0.1', '1', '+Inf']));
  });

  test('the aggregation queue, its throughput and the process are reported', async () => {
    const tenant = await server.provision();
    await tenant.fetch('Patient', { method: 'POST', body: JSON.stringify({ resourceType: 'Patient', identifier: [{ system: 'urn:x', value: '2' }] }) });
    await server.waitForAggregation();
    const families = await scrape();
    expect(Number(family(families, 'tributary_aggregation_queue_depth').metrics[0].value)).toBe(0);
    expect(Number(family(families, 'tributary_aggregation_parked_items').metrics[0].value)).toBe(0);
    expect(Number(family(families, 'tributary_aggregation_lag_seconds').metrics[0].value)).toBe(0);
    expect(Number(family(families, 'tributary_aggregation_items_total').metrics[0].value)).toBeGreaterThanOrEqual(1);
    expect(Number(family(families, 'process_resident_memory_bytes').metrics[0].value)).toBeGreaterThan(0);
    expect(Number(family(families, 'nodejs_heap_size_used_bytes').metrics[0].value)).toBeGreaterThan(0);
    // Memory after the last major GC (what a leak raises; the soak judges these), and requests in flight (the
    // scrape reading it is one; the soak's shutdown check waits on it).
    expect(Number(family(families, 'tributary_heap_used_after_major_gc_bytes').metrics[0].value)).toBeGreaterThan(0);
    expect(Number(family(families, 'tributary_rss_after_major_gc_bytes').metrics[0].value)).toBeGreaterThan(0);
    expect(Number(family(families, 'tributary_http_requests_in_flight').metrics[0].value)).toBe(1);
    if (server.database.url) {
      const pool = family(families, 'tributary_db_pool_connections').metrics;
      const state = (name: string) => Number(pool.find((m) => m.labels?.state === name)?.value);
      // The test database's pool (test/support/testDatabase.ts) has 5 connections.
      expect(state('max')).toBe(5);
      expect(state('total')).toBeGreaterThanOrEqual(1);
      expect(state('total')).toBeLessThanOrEqual(state('max'));
      expect(state('idle')).toBeLessThanOrEqual(state('total'));
      expect(state('waiting')).toBe(0);
    }
  });

  test('/healthz is liveness; /readyz is ready when the database answers, migrations are applied and the worker runs', async () => {
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    const ready = await fetch(`${server.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ ready: true, checks: { database: { ok: true }, migrations: { ok: true }, worker: { ok: true } } });
  });

  test('/readyz is 503 naming a migration the database lacks', async () => {
    const [last] = await server.database.db.sql.query<{ migration_name: string }[]>(`SELECT migration_name FROM "_prisma_migrations" ORDER BY migration_name DESC LIMIT 1`);
    await server.database.db.sql.execute(`UPDATE "_prisma_migrations" SET rolled_back_at = now() WHERE migration_name = $1`, last.migration_name);
    try {
      const res = await fetch(`${server.url}/readyz`);
      expect(res.status).toBe(503);
      const body = (await res.json()) as { ready: boolean; checks: { migrations: { ok: boolean; detail: string } } };
      expect(body.ready).toBe(false);
      expect(body.checks.migrations).toEqual({ ok: false, detail: `pending: ${last.migration_name}` });
    } finally {
      await server.database.db.sql.execute(`UPDATE "_prisma_migrations" SET rolled_back_at = NULL WHERE migration_name = $1`, last.migration_name);
    }
    expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
  });
});

describe('metrics behind METRICS_TOKEN or on METRICS_PORT', () => {
  test('with METRICS_TOKEN only that token is accepted', async () => {
    const token = 'prometheus-scrape-token-0123456789';
    const server = await startTestServer({ METRICS_TOKEN: token });
    try {
      expect((await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
      expect((await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${server.adminToken}` } })).status).toBe(401);
    } finally {
      await server.close();
    }
  });

  test('with METRICS_PORT the metrics leave the main port for a listener of their own', async () => {
    const port = await freePort();
    const server = await startTestServer({ METRICS_PORT: String(port) });
    try {
      expect((await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${server.adminToken}` } })).status).toBe(404);
      const res = await fetch(`http://127.0.0.1:${port}/metrics`);
      expect(res.status).toBe(200);
      const families = parsePrometheusTextFormat(await res.text());
      expect(families.map((f) => f.name)).toContain('tributary_aggregation_queue_depth');
    } finally {
      await server.close();
    }
  });
});

describe('readiness when the database is gone', () => {
  test('/readyz is 503 with the database check failing, while /healthz still answers', async () => {
    const server = await startTestServer({ AGGREGATION_WORKER: 'off' });
    try {
      await server.database.db.close();
      const res = await fetch(`${server.url}/readyz`);
      expect(res.status).toBe(503);
      const body = (await res.json()) as { ready: boolean; checks: { database: { ok: boolean; detail?: string }; migrations: { ok: boolean } } };
      expect(body.ready).toBe(false);
      expect(body.checks.database.ok).toBe(false);
      expect(body.checks.database.detail).toBeTruthy();
      expect(body.checks.migrations.ok).toBe(false);
      expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    } finally {
      await server.app.close();
      await server.database.drop().catch(() => undefined);
    }
  });
});
