// Fixed-request load with autocannon, in its own process: `node cannon.mjs @spec.json` → one JSON line.
// spec: { url, requests: [{ method, path, headers, body }], connections, durationMs }
// Each connection cycles through `requests`. autocannon's own histogram keeps whole milliseconds, too coarse
// for 1–5 ms latencies, so every response time is taken from its 'response' event (float ms) instead.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
const require = createRequire(import.meta.url);
const autocannon = require('autocannon');

const arg = process.argv[2];
const spec = JSON.parse(arg.startsWith('@') ? readFileSync(arg.slice(1), 'utf8') : arg);
const latencies = [];
let statusErrors = 0;
let firstFailure;

const instance = autocannon({
  url: spec.url,
  connections: spec.connections,
  duration: spec.durationMs / 1000,
  requests: spec.requests,
});
instance.on('response', (_client, statusCode, _bytes, responseTime) => {
  latencies.push(responseTime);
  if (statusCode >= 400) {
    statusErrors++;
    firstFailure ??= statusCode;
  }
});
const result = await instance;
latencies.sort((a, b) => a - b);
const pct = (p) => (latencies.length ? latencies[Math.min(latencies.length - 1, Math.max(0, Math.ceil((p / 100) * latencies.length) - 1))] : null);
const seconds = result.duration;
process.stdout.write(
  JSON.stringify({
    count: latencies.length,
    errors: result.errors + result.timeouts,
    statusErrors,
    firstFailureStatus: firstFailure ?? null,
    seconds,
    // Answered requests only: a refusal (a 429 from a limit, say) is not throughput.
    rps: (latencies.length - statusErrors) / seconds,
    p50: pct(50),
    p95: pct(95),
    p99: pct(99),
  }) + '\n',
);
