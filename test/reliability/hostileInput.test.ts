import { request as httpRequest } from 'node:http';
import { startTestServer, type Tenant, type TestServer } from '../support/testServer';

/**
 * The reproductions of issue 16 ("hostile input never reaches a 5xx"), each sent to the real server: every one
 * gets a clear 4xx OperationOutcome and changes no stored data.
 */
let server: TestServer;
let tenant: Tenant;

beforeAll(async () => {
  server = await startTestServer({ BODY_LIMIT_BYTES: String(1024 * 1024) });
  tenant = await server.provision();
});
afterAll(() => server.close());

interface Outcome {
  status: number;
  diagnostics: string;
  expression?: string[];
}

async function outcome(res: Response): Promise<Outcome> {
  const text = await res.text();
  let body: any;
  try {
    body = JSON.parse(text);
  } catch {
    throw new Error(`${res.status}: not JSON: ${text.slice(0, 200)}`);
  }
  expect(body.resourceType).toBe('OperationOutcome');
  return { status: res.status, diagnostics: body.issue[0].diagnostics, expression: body.issue[0].expression };
}

async function storedRows(): Promise<number> {
  const rows = await server.database.db.prisma.$queryRawUnsafe<{ n: bigint }[]>(`SELECT count(*) AS n FROM resource WHERE store = $1`, tenant.endpointId);
  return Number(rows[0].n);
}

/** Sends raw bytes as a request body (fetch would re-encode a string as valid UTF-8). */
function post(path: string, body: Buffer, headers: Record<string, string>): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${tenant.baseUrl}/${path}`, { method: 'POST', headers: { authorization: `Bearer ${tenant.token}`, ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

function nestedArrays(depth: number): string {
  return `${'['.repeat(depth)}1${']'.repeat(depth)}`;
}

/** Built as text: JSON.stringify of so deep an object overflows the test's own stack. */
function nestedContained(depth: number): string {
  return `${'{"resourceType":"Patient","contained":['.repeat(depth)}{"resourceType":"Patient"}${']}'.repeat(depth)}`;
}

describe('hostile bodies get a 4xx and store nothing', () => {
  test('a resource nested 10,000 arrays deep is 400 naming the depth limit', async () => {
    const before = await storedRows();
    const body = `{"resourceType":"Patient","extension":${nestedArrays(10_000)}}`;
    const o = await outcome(await tenant.fetch('Patient', { method: 'POST', body }));
    expect(o.status).toBe(400);
    expect(o.diagnostics).toMatch(/nested/i);
    expect(await storedRows()).toBe(before);
  });

  test('contained resources nested 3,000 deep are 400', async () => {
    const before = await storedRows();
    const o = await outcome(await tenant.fetch('Patient', { method: 'POST', body: nestedContained(3000) }));
    expect(o.status).toBe(400);
    expect(await storedRows()).toBe(before);
  });

  test.each([
    ['extensions nested 10,000 deep', 10_000, (d: number) => `${'<extension url="urn:x">'.repeat(d)}${'</extension>'.repeat(d)}`],
    ['extensions nested just past the limit', 101, (d: number) => `${'<extension url="urn:x">'.repeat(d)}${'</extension>'.repeat(d)}`],
    ['contained resources nested 3,000 deep', 3000, (d: number) => `${'<contained><Patient>'.repeat(d)}${'</Patient></contained>'.repeat(d)}`],
  ])('an XML body with %s is 400 naming MAX_BODY_DEPTH', async (_name, depth, nest) => {
    const before = await storedRows();
    const body = `<Patient xmlns="http://hl7.org/fhir">${nest(depth)}</Patient>`;
    const o = await outcome(await tenant.fetch('Patient', { method: 'POST', headers: { 'content-type': 'application/fhir+xml', accept: 'application/fhir+json' }, body }));
    expect({ status: o.status, limit: /MAX_BODY_DEPTH/.test(o.diagnostics) }).toEqual({ status: 400, limit: true });
    expect(await storedRows()).toBe(before);
  });

  test('invalid UTF-8 inside a string is 400, not stored mangled', async () => {
    const before = await storedRows();
    const head = Buffer.from('{"resourceType":"Patient","name":[{"family":"');
    const tail = Buffer.from('"}]}');
    const res = await post('Patient', Buffer.concat([head, Buffer.from([0xc3, 0x28, 0xff, 0xfe]), tail]), { 'content-type': 'application/fhir+json' });
    expect(res.status).toBe(400);
    expect(JSON.parse(res.text).issue[0].diagnostics).toMatch(/UTF-8/);
    expect(await storedRows()).toBe(before);
  });

  test('"meta": "x" is 400 instead of being stored as {"0":"x"}', async () => {
    const o = await outcome(await tenant.fetch('Patient', { method: 'POST', body: JSON.stringify({ resourceType: 'Patient', meta: 'x' }) }));
    expect(o.status).toBe(400);
  });

  test('telecom: [[[]]] is 400 (FHIR JSON has no arrays of arrays)', async () => {
    const o = await outcome(await tenant.fetch('Patient', { method: 'POST', body: JSON.stringify({ resourceType: 'Patient', telecom: [[[]]] }) }));
    expect(o.status).toBe(400);
  });

  test('multipleBirthInteger: 1e308 is 400 (not a 32-bit integer)', async () => {
    const o = await outcome(await tenant.fetch('Patient', { method: 'POST', body: '{"resourceType":"Patient","multipleBirthInteger":1e308}' }));
    expect(o.status).toBe(400);
  });

  test.each([
    ['application/json-patch+json', 415],
    ['application/fhir+json; charset=utf-16', 415],
    ['text/plain', 415],
  ])('a create sent as %s is %d', async (contentType, status) => {
    const before = await storedRows();
    const res = await post('Patient', Buffer.from(JSON.stringify({ resourceType: 'Patient' })), { 'content-type': contentType });
    expect(res.status).toBe(status);
    expect(JSON.parse(res.text).resourceType).toBe('OperationOutcome');
    expect(await storedRows()).toBe(before);
  });

  test('a create with no content type is 415', async () => {
    const before = await storedRows();
    const res = await post('Patient', Buffer.from(JSON.stringify({ resourceType: 'Patient' })), {});
    expect(res.status).toBe(415);
    expect(await storedRows()).toBe(before);
  });

  test('a body over BODY_LIMIT_BYTES gets a 413 OperationOutcome, not a broken pipe', async () => {
    const res = await post('Patient', Buffer.alloc(2 * 1024 * 1024, 0x20), { 'content-type': 'application/fhir+json' });
    expect(res.status).toBe(413);
    expect(JSON.parse(res.text).issue[0].diagnostics).toMatch(/limit/);
  });

  test('fetch sending a body 8 times the limit reads the 413 (the upload is read to its end, not cut off)', async () => {
    const res = await tenant.fetch('Patient', { method: 'POST', body: ' '.repeat(8 * 1024 * 1024) });
    expect(res.status).toBe(413);
    expect(((await res.json()) as any).resourceType).toBe('OperationOutcome');
  });

  test('a body over the limit sent without Content-Length (chunked) also gets a 413', async () => {
    const res = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = httpRequest(
        `${tenant.baseUrl}/Patient`,
        { method: 'POST', headers: { authorization: `Bearer ${tenant.token}`, 'content-type': 'application/fhir+json', 'transfer-encoding': 'chunked' } },
        (r) => {
          const chunks: Buffer[] = [];
          r.on('data', (c: Buffer) => chunks.push(c));
          r.on('end', () => resolve({ status: r.statusCode ?? 0, text: Buffer.concat(chunks).toString() }));
        },
      );
      req.on('error', reject);
      for (let i = 0; i < 32; i++) req.write(Buffer.alloc(64 * 1024, 0x20));
      req.end();
    });
    expect(res.status).toBe(413);
  });
});

describe('hostile GraphQL documents are refused before they run', () => {
  async function graphql(query: string): Promise<{ status: number; body: any }> {
    const res = await fetch(`${server.url}/graphql`, {
      method: 'POST',
      headers: { authorization: `Bearer ${tenant.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ query }),
    });
    return { status: res.status, body: await res.json() };
  }

  test('a document of 20,000 tokens is 400 naming the token limit', async () => {
    const { status, body } = await graphql(`{ ${'__typename '.repeat(20_000)} }`);
    expect(status).toBe(400);
    expect(JSON.stringify(body.errors)).toMatch(/token/i);
  });

  test('a document with 200 aliases is 400 naming the alias limit', async () => {
    const { status, body } = await graphql(`{ ${Array.from({ length: 200 }, (_, i) => `a${i}: __typename`).join(' ')} }`);
    expect(status).toBe(400);
    expect(JSON.stringify(body.errors)).toMatch(/aliases/);
  });

  test('$graphql at the FHIR door refuses the 20,000-token document too', async () => {
    const res = await tenant.fetch('$graphql', { method: 'POST', body: JSON.stringify({ query: `{ ${'__typename '.repeat(20_000)} }` }) });
    expect(res.status).toBeLessThan(500);
    expect(JSON.stringify(await res.json())).toMatch(/token/i);
  });
});

describe('hostile paths and queries get a 4xx before any SQL', () => {
  test.each(['GET', 'DELETE', 'PUT'])('%s Patient/%00 is 400 naming the id', async (method) => {
    const o = await outcome(await tenant.fetch('Patient/%00', { method, ...(method === 'PUT' ? { body: JSON.stringify({ resourceType: 'Patient' }) } : {}) }));
    expect(o.status).toBe(400);
    expect(o.diagnostics).toMatch(/id/);
  });

  test('an id longer than 64 characters is 400', async () => {
    const o = await outcome(await tenant.fetch(`Patient/${'a'.repeat(65)}`));
    expect(o.status).toBe(400);
  });

  test('a huge version number is 400, not an integer overflow', async () => {
    const created = (await (await tenant.fetch('Patient', { method: 'POST', body: JSON.stringify({ resourceType: 'Patient' }) })).json()) as { id: string };
    const o = await outcome(await tenant.fetch(`Patient/${created.id}/_history/99999999999999999999`));
    expect(o.status).toBe(400);
    expect(o.diagnostics).toMatch(/version/);
  });

  test('a NUL byte in a search value is 400', async () => {
    const o = await outcome(await tenant.fetch('Patient?name=%00'));
    expect(o.status).toBe(400);
  });

  test('malformed percent-encoding in a path is 400', async () => {
    const o = await outcome(await tenant.fetch('Patient/%E0%A4%A'));
    expect(o.status).toBe(400);
  });

  test('a 50 KB query string on /healthz gets a real HTTP answer (431) with an OperationOutcome', async () => {
    const res = await fetch(`${server.url}/healthz?x=${'a'.repeat(50 * 1024)}`);
    expect(res.status).toBe(431);
    expect(((await res.json()) as any).resourceType).toBe('OperationOutcome');
  });
});

describe('search limits answer 400 naming the limit', () => {
  test('500 repeated string parameters are refused', async () => {
    const query = Array.from({ length: 500 }, (_, i) => `name=x${i}`).join('&');
    const o = await outcome(await tenant.fetch(`Patient?${query}`));
    expect(o.status).toBe(400);
    expect(o.diagnostics).toMatch(/parameters/);
  });

  test('a chain deeper than 3 is refused', async () => {
    const o = await outcome(await tenant.fetch('Observation?subject:Patient.general-practitioner:PractitionerRole.organization.partof.partof.name=x'));
    expect(o.status).toBe(400);
    expect(o.diagnostics).toMatch(/chain/);
  });

  test('_has nested deeper than 3 is refused', async () => {
    const o = await outcome(await tenant.fetch('Patient?_has:Observation:subject:_has:Observation:has-member:_has:Observation:has-member:_has:Observation:has-member:code=x'));
    expect(o.status).toBe(400);
    expect(o.diagnostics).toMatch(/_has/);
  });

  test('an OR-list of 1,000 values is refused', async () => {
    const values = Array.from({ length: 1000 }, (_, i) => `v${i}`).join(',');
    const o = await outcome(await tenant.fetch(`Patient?identifier=${values}`));
    expect(o.status).toBe(400);
    expect(o.diagnostics).toMatch(/values/);
  });

  test('too many _include parameters are refused', async () => {
    const includes = Array.from({ length: 30 }, () => '_include=Patient:general-practitioner').join('&');
    const o = await outcome(await tenant.fetch(`Patient?${includes}`));
    expect(o.status).toBe(400);
    expect(o.diagnostics).toMatch(/_include/);
  });

  test('_count above the ceiling is capped, not an error', async () => {
    const res = await tenant.fetch('Patient?_count=100000');
    expect(res.status).toBe(200);
  });
});
