import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { startServer } from './server';

/**
 * How fast the server starts and how much it holds when idle: a process started as `npm start` starts it
 * (compiled, its documented environment), timed from the spawn to its first answered request (/healthz,
 * polled every 100 ms), then left idle for a moment before its resident set (VmRSS) and V8 heap (its own
 * /metrics) are read.
 */
export interface StartMeasurement {
  firstResponseMs: number;
  idleRssMb: number | null;
  heapUsedMb: number | null;
  heapTotalMb: number | null;
}

export interface StartOptions {
  /** Extra environment (DATABASE_URL for PostgreSQL; none: the embedded store). */
  env?: Record<string, string>;
  /** An existing data folder (a restart); default: a fresh one (a first start). */
  dataDir?: string;
  /** How long the server idles before memory is read. */
  idleMs?: number;
}

export async function measureStart(options: StartOptions = {}): Promise<StartMeasurement> {
  const started = performance.now();
  const server = await startServer({ env: options.env, dataDir: options.dataDir });
  const firstResponseMs = Math.round(performance.now() - started);
  try {
    await new Promise((r) => setTimeout(r, options.idleMs ?? 2000));
    const idleRssMb = server.rssMb();
    const res = await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${server.adminToken}` } });
    const families = res.ok ? parsePrometheusTextFormat(await res.text()) : [];
    const megabytes = (name: string) => {
      const value = families.find((f) => f.name === name)?.metrics[0]?.value;
      return value === undefined ? null : Math.round(Number(value) / 1024 / 1024);
    };
    return { firstResponseMs, idleRssMb, heapUsedMb: megabytes('nodejs_heap_size_used_bytes'), heapTotalMb: megabytes('nodejs_heap_size_total_bytes') };
  } finally {
    await server.stop({ removeData: options.dataDir === undefined });
  }
}
