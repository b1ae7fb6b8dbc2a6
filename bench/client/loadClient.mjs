// A closed-loop HTTP poster, run as its own process so load never competes inside the server or the bench:
// `node loadClient.mjs @spec.json` → one JSON line of results on stdout.
// spec: { requests: [{ method, url, headers, body }], concurrency, total?, durationMs? }
//    or { stream: true, concurrency }: requests arrive on stdin, one JSON object a line, and each is sent
//       once — a whole load in one process that never holds it all (no pauses between chunks).
//    or { file, url, concurrency, token: { url, clientId, clientSecret } }: POSTs every line of `file` (a
//       transaction Bundle's JSON text each, built before the load) to `url` once, as FHIR JSON with a bearer
//       token the client mints itself (and again every 2 minutes: tokens live 5) — nothing is made, parsed or
//       re-encoded during the load, as the floors' rows are built before theirs.
// The ingest uses it: each request (a transaction Bundle) is sent exactly once when `total` equals the
// number of requests, several in flight, and every failure is reported with its index, status and reason.
// Every request is timed, so percentiles are exact.
import http from 'node:http';
import { readFileSync } from 'node:fs';
import readline from 'node:readline';

const arg = process.argv[2];
const spec = JSON.parse(arg.startsWith('@') ? readFileSync(arg.slice(1), 'utf8') : arg);
const agent = new http.Agent({ keepAlive: true, maxSockets: spec.concurrency });
const latencies = [];
const failures = [];
const failedIndices = [];
let errors = 0;
let statusErrors = 0;
let throttled = 0;
let next = 0;
const started = performance.now();
const deadline = spec.durationMs ? started + spec.durationMs : Infinity;

function once(index, req, retries = 0) {
  return new Promise((resolve) => {
    const u = new URL(req.url);
    const t0 = performance.now();
    const r = http.request({ agent, method: req.method ?? 'GET', hostname: u.hostname, port: u.port, path: u.pathname + u.search, headers: req.headers ?? {} }, (res) => {
      // Throttled (the server's aggregation is behind): wait as told and send the same request again.
      if ((res.statusCode === 503 || res.statusCode === 429) && retries < 120) {
        res.resume();
        res.on('end', () => {
          throttled++;
          setTimeout(() => once(index, req, retries + 1).then(resolve), 1000 * Math.min(30, Number(res.headers['retry-after']) || 1));
        });
        return;
      }
      const failed = res.statusCode >= 400;
      let text = '';
      res.on('data', (c) => {
        if (failed && text.length < 2000) text += c;
      });
      res.on('end', () => {
        latencies.push(performance.now() - t0);
        if (failed) {
          statusErrors++;
          failedIndices.push(index);
          if (failures.length < 50) failures.push({ index, status: res.statusCode, body: text.slice(0, 500) });
        }
        resolve();
      });
    });
    r.on('error', (err) => {
      errors++;
      failedIndices.push(index);
      if (failures.length < 50) failures.push({ index, status: 0, body: String(err.message) });
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
    const index = next++;
    await once(index, spec.requests[index % spec.requests.length]);
  }
}

/** Streamed requests: a few read ahead of the senders, the rest wait in the pipe. */
async function streamed() {
  const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity })[Symbol.asyncIterator]();
  let index = 0;
  const take = async () => {
    const { value, done } = await lines.next();
    return done ? undefined : { index: index++, req: JSON.parse(value) };
  };
  let reading = Promise.resolve();
  const nextRequest = () => (reading = reading.then(take));
  await Promise.all(
    Array.from({ length: spec.concurrency }, async () => {
      for (let item = await nextRequest(); item; item = await nextRequest()) await once(item.index, item.req);
    }),
  );
}

/** The token endpoint's answer for the spec's client (client credentials). */
async function mint() {
  const res = await fetch(spec.token.url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', client_id: spec.token.clientId, client_secret: spec.token.clientSecret }).toString(),
  });
  const json = await res.json();
  if (!res.ok || !json.access_token) throw new Error(`token request → ${res.status} ${JSON.stringify(json).slice(0, 300)}`);
  return json.access_token;
}

/**
 * Every line of the prebuilt file, once, as the body of a POST to spec.url. The file is read whole into one
 * buffer (outside the JavaScript heap) and each line is sent as a slice of it: no string is made, so the
 * load costs the machine the sending alone. (Read line by line as strings, the whole file was read ahead at
 * once and the load ran slower than the Bundles made on the fly.)
 */
async function fromFile() {
  const headers = { 'content-type': 'application/fhir+json', authorization: `Bearer ${await mint()}` };
  const refresh = setInterval(() => {
    mint().then(
      (token) => (headers.authorization = `Bearer ${token}`),
      () => undefined,
    );
  }, 120_000);
  const bytes = readFileSync(spec.file);
  let at = 0;
  let index = 0;
  const take = () => {
    if (at >= bytes.length) return undefined;
    const end = bytes.indexOf(10, at);
    const stop = end < 0 ? bytes.length : end;
    const body = bytes.subarray(at, stop);
    at = stop + 1;
    return { index: index++, req: { method: 'POST', url: spec.url, headers, body } };
  };
  try {
    await Promise.all(
      Array.from({ length: spec.concurrency }, async () => {
        for (let item = take(); item; item = take()) await once(item.index, item.req);
      }),
    );
  } finally {
    clearInterval(refresh);
  }
}

if (spec.file) await fromFile();
else if (spec.stream) await streamed();
else await Promise.all(Array.from({ length: spec.concurrency }, worker));
const seconds = (performance.now() - started) / 1000;
latencies.sort((a, b) => a - b);
const pct = (p) => (latencies.length ? latencies[Math.min(latencies.length - 1, Math.max(0, Math.ceil((p / 100) * latencies.length) - 1))] : null);
process.stdout.write(
  JSON.stringify({
    count: latencies.length,
    errors,
    statusErrors,
    throttled,
    seconds,
    rps: latencies.length / seconds,
    p50: pct(50),
    p95: pct(95),
    p99: pct(99),
    failures,
    failedIndices,
  }) + '\n',
);
agent.destroy();
