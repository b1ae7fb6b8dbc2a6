// Decimals keep their digits end to end (FHIR R4 datatypes.html#decimal: `1.50` is not `1.5`): REST in JSON
// and XML, Bundles, history, search, $graphql and /graphql, and the aggregate.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { isFhirDecimal, parseFhirJson, stringifyFhirJson } from '../../src/fhir/losslessJson';
import { startTestServer, type Tenant, type TestServer } from '../support/testServer';

const R4_JSON = path.dirname(require.resolve('hl7.fhir.r4.examples/package.json'));

let server: TestServer;
let r4: Tenant;
let stu3: Tenant;

beforeAll(async () => {
  server = await startTestServer();
  r4 = await server.provision();
  stu3 = await server.provision({ fhirVersion: 'STU3', defaultSourceOrg: 'Organization/src' });
}, 300_000);
afterAll(() => server.close());

/** A number's digits with any exponent written out: PostgreSQL's numeric keeps every digit but not the `e` notation. */
function plainDecimal(text: string): string {
  const m = /^(-?)([0-9]+)(?:\.([0-9]+))?[eE]([+-]?[0-9]+)$/.exec(text);
  if (!m) return text;
  const [, sign, int, frac = '', exp] = m;
  const digits = int + frac;
  const point = int.length + Number(exp);
  let body: string;
  if (point <= 0) body = `0.${'0'.repeat(-point)}${digits}`;
  else if (point >= digits.length) body = digits + '0'.repeat(point - digits.length);
  else body = `${digits.slice(0, point)}.${digits.slice(point)}`;
  return sign + body.replace(/^0+(?=[0-9])/, '');
}

/** Sorted keys, numbers as their exact digits: equal content compares equal whatever jsonb's key order. */
function canonical(value: unknown): unknown {
  if (isFhirDecimal(value)) return `#${plainDecimal(value.toString())}`;
  if (typeof value === 'number') return `#${value}`;
  if (Array.isArray(value)) return value.map(canonical);
  if (value && typeof value === 'object') {
    const object = value as Record<string, unknown>;
    return Object.fromEntries(
      Object.keys(object)
        .filter((k) => k !== 'meta')
        .sort()
        .map((k) => [k, canonical(object[k])]),
    );
  }
  return value;
}

async function json(res: Response): Promise<any> {
  return parseFhirJson(await res.text());
}

const jsonBody = (resource: unknown) => stringifyFhirJson(resource);

function example(file: string): any {
  return parseFhirJson(readFileSync(path.join(R4_JSON, file), 'utf8'));
}

test('the examples the issue names come back with their digits: 1.0, 12500.00, 0.001530', async () => {
  for (const [file, digits] of [
    ['Observation-decimal.json', /"value":1\.0[,}]/],
    ['Claim-MED-00050.json', /12500\.00[,}]/],
    ['PaymentNotice-77654.json', /12500\.00[,}]/],
    ['RiskAssessment-genetic.json', /0\.001530[,}]/],
  ] as const) {
    const resource = example(file);
    const put = await r4.fetch(`${resource.resourceType}/${resource.id}`, { method: 'PUT', body: jsonBody(resource) });
    expect([put.status, file, put.status === 201 ? '' : await put.text()]).toEqual([201, file, '']);
    const text = await (await r4.fetch(`${resource.resourceType}/${resource.id}`)).text();
    expect(text).toMatch(digits);
    expect(canonical(parseFhirJson(text))).toEqual(canonical(resource));
  }
});

test('every JSON example of the R4 specification up to 1 MB goes through update-as-create and read unchanged apart from meta', async () => {
  const files = readdirSync(R4_JSON).filter((f) => /^[A-Z].*\.json$/.test(f) && statSync(path.join(R4_JSON, f)).size <= 1_000_000).slice(0, Number(process.env.DEBUG_BATCH ?? 1e9));
  if (!process.env.DEBUG_BATCH) expect(files.length).toBeGreaterThan(5000);
  const refused: string[] = [];
  const changed: string[] = [];
  // Batches of PUTs, then batches of GETs: each entry is routed as its own request (http.html#transaction).
  for (let i = 0; i < files.length; i += 100) {
    const resources = files.slice(i, i + 100).map((f) => ({ file: f, resource: example(f) }));
    const batch = {
      resourceType: 'Bundle',
      type: 'batch',
      entry: resources.map(({ resource }) => ({ resource, request: { method: 'PUT', url: `${resource.resourceType}/${resource.id}` } })),
    };
    const t0 = Date.now();
    const res = await r4.fetch('', { method: 'POST', body: jsonBody(batch) });
    const put = await json(res);
    if (process.env.DEBUG_BATCH) console.log(i, res.status, Date.now() - t0, put.entry ? '' : JSON.stringify(put).slice(0, 500));
    const accepted = resources.filter(({ file }, n) => {
      const status = String(put.entry[n].response.status);
      if (!/^20[01]/.test(status)) refused.push(`${file}: ${status} ${JSON.stringify(put.entry[n].response.outcome?.issue?.[0]?.diagnostics ?? '')}`);
      return /^20[01]/.test(status);
    });
    const reads = { resourceType: 'Bundle', type: 'batch', entry: accepted.map(({ resource }) => ({ request: { method: 'GET', url: `${resource.resourceType}/${resource.id}` } })) };
    const got = await json(await r4.fetch('', { method: 'POST', body: jsonBody(reads) }));
    accepted.forEach(({ file, resource }, n) => {
      if (JSON.stringify(canonical(got.entry[n].resource)) !== JSON.stringify(canonical(resource))) changed.push(file);
    });
  }
  expect(changed).toEqual([]);
  expect(refused).toEqual([]);
}, 600_000);
