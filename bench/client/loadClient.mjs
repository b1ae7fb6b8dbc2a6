// A closed-loop HTTP load generator, run as its own process so load never competes inside the server:
// `node loadClient.mjs '<json spec>'` → one JSON line of results on stdout.
// spec: { requests: [{ method, url, headers, body }], concurrency, durationMs?, total? }
// Requests are taken round-robin; latencies are exact (every request is timed), so percentiles are exact.
import http from 'node:http';

import { readFileSync } from 'node:fs';

// `@file` reads the spec from a file (request bodies can be megabytes).
const arg = process.argv[2];
const spec = JSON.parse(arg.startsWith('@') ? readFileSync(arg.slice(1), 'utf8') : arg);
const agent = new http.Agent({ keepAlive: true, maxSockets: spec.concurrency });
const latencies = [];
let errors = 0;
let statusErrors = 0;
let next = 0;
let bytes = 0;
const started = performance.now();
const deadline = spec.durationMs ? started + spec.durationMs : Infinity;

function once(req) {
  return new Promise((resolve) => {
    const u = new URL(req.url);
    const t0 = performance.now();
    const r = http.request(
      { agent, method: req.method ?? 'GET', hostname: u.hostname, port: u.port, path: u.pathname + u.search, headers: req.headers ?? {} },
      (res) => {
        res.on('data', (c) => (bytes += c.length));
        res.on('end', () => {
          if (res.statusCode >= 400) statusErrors++;
          latencies.push(performance.now() - t0);
          resolve();
        });
      },
    );
    r.on('error', () => {
      errors++;
      resolve();
    });
    if (req.body) r.write(req.body);
    r.end();
  });
}

async function worker() {
  for (;;) {
    if (performance.now() > deadline) return;
    if (spec.total !== undefined && next >= spec.total) return;
    const req = spec.requests[next++ % spec.requests.length];
    await once(req);
  }
}

await Promise.all(Array.from({ length: spec.concurrency }, worker));
const seconds = (performance.now() - started) / 1000;
latencies.sort((a, b) => a - b);
const pct = (p) => (latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] : null);
process.stdout.write(
  JSON.stringify({ count: latencies.length, errors, statusErrors, seconds, rps: latencies.length / seconds, p50: pct(50), p95: pct(95), p99: pct(99), bytes }) + '\n',
);
agent.destroy();
