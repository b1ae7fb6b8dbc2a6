import { subscribe } from '../support/liveClient';
import { startTestServer, type Tenant, type TestServer } from '../support/testServer';

/**
 * The scope matrix: each interaction × SMART scope set → allowed, or 403 (OperationOutcome `forbidden`,
 * `WWW-Authenticate: … error="insufficient_scope"`) and nothing written, as seen afterwards with a token
 * that holds every scope. Permissions per interaction (SMART v2 letters): read/vread/instance history r,
 * search/type history s, create c, update/patch u, delete d, conditional create c+s, conditional update
 * u+s, conditional delete d+s. v1 scopes mean: `.read` = rs, `.write` = cud, `.*` = cruds.
 * Then Bundles (a transaction is refused whole, a batch entry by entry), the token endpoint's narrowing,
 * and searches that reach through a type the token has no scope for.
 */
type Json = Record<string, any>;
const NHS = 'https://fhir.nhs.uk/Id/nhs-number';
const CELL = 'urn:cell';

/** The scope sets, each a client of the same customer; `narrowed` ones are asked for with `scope=` from a `system/*.cruds` client. */
const SCOPE_SETS: { scopes: string; narrowed?: boolean }[] = [
  { scopes: 'system/Patient.read' },
  { scopes: 'system/*.write' },
  { scopes: 'system/Observation.*' },
  { scopes: 'system/Patient.rs', narrowed: true },
  { scopes: 'system/*.cruds' },
  { scopes: 'system/Patient.r', narrowed: true },
  { scopes: 'system/Patient.s' },
  { scopes: 'system/Patient.cud', narrowed: true },
];

/** The expectation, written out independently of the server's scope code. */
function permits(scopes: string, type: string, permission: string): boolean {
  return scopes.split(' ').some((scope) => {
    const m = /^system\/([A-Za-z]+|\*)\.(read|write|\*|[cruds]+)$/.exec(scope);
    if (!m || (m[1] !== '*' && m[1] !== type)) return false;
    const letters = ({ read: 'rs', write: 'cud', '*': 'cruds' } as Record<string, string>)[m[2]] ?? m[2];
    return letters.includes(permission);
  });
}

/** A fresh Patient per write cell (written with the all-scopes token), carrying identifier `urn:cell|<n>`. */
interface Fixture {
  n: string;
  id: string;
  aggregatedId: string;
}
interface Outcome {
  status: number;
  body: Json;
  headers: Headers;
  /** GraphQL: the error of the field, when refused. */
  graphqlError?: Json;
}
interface Interaction {
  name: string;
  needs: [type: string, permission: string][];
  /** Writes need a fixture of their own; reads share one. */
  writes: boolean;
  door: 'REST' | 'GraphQL' | 'aggregated';
  run(token: string, f: Fixture): Promise<Outcome>;
  ok: number[];
}

let server: TestServer;
let tenant: Tenant;
let shared: Fixture;
/** The customer's STU3 endpoint and the shared Patient's twin on it. */
let stu3BaseUrl: string;
let stu3PatientId: string;
const tokens = new Map<string, string>();
let seq = 0;
/** The `system/*.cruds` client the narrowed tokens are asked from. */
let everything: { clientId: string; clientSecret: string };

async function call(token: string, path: string, init: RequestInit = {}, base = tenant.baseUrl): Promise<Outcome> {
  const res = await fetch(`${base}/${path}`, {
    ...init,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/fhir+json', ...(init.headers as Record<string, string>) },
  });
  const text = await res.text();
  // NDJSON (an export file) is kept as its lines.
  const ndjson = (res.headers.get('content-type') ?? '').includes('ndjson');
  const body = ndjson ? { lines: text.split('\n').filter((l) => l !== '') } : text ? (JSON.parse(text) as Json) : {};
  return { status: res.status, body, headers: res.headers };
}
async function graphql(token: string, query: string, variables: Json = {}): Promise<Outcome> {
  const res = await fetch(`${server.url}/graphql`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ query, variables: { ep: tenant.endpointId, ...variables } }),
  });
  const body = (await res.json()) as Json;
  return { status: res.status, body, headers: res.headers, graphqlError: body.errors?.[0] };
}
/**
 * A `$graphql` answer as a GraphQL outcome: its first error, or, when the operation was refused before
 * GraphQL ran (the instance read of `Patient/x/$graphql`), the REST 403 as that error would carry it.
 */
function viaOperation(out: Outcome): Outcome {
  if (out.body.resourceType === 'OperationOutcome' && out.status === 403) return { ...out, status: 200, graphqlError: { extensions: { code: 'FORBIDDEN', resource: out.body } } };
  return { ...out, graphqlError: out.body.errors?.[0] };
}
const patient = (n: string, extra: Json = {}) => ({ resourceType: 'Patient', identifier: [{ system: CELL, value: n }], gender: 'female', ...extra });

const pool: Fixture[] = [];
/** Each write cell's own Patient, from those written in one transaction before the cells run. */
async function fixture(): Promise<Fixture> {
  const f = pool.pop();
  if (!f) throw new Error('the fixture pool is empty');
  return f;
}
async function fillPool(size: number): Promise<void> {
  const ns = Array.from({ length: size }, () => `c${++seq}`);
  const bundle = { resourceType: 'Bundle', type: 'transaction', entry: ns.map((n) => ({ resource: patient(n), request: { method: 'POST', url: 'Patient' } })) };
  const res = await call(tenant.token, '', { method: 'POST', body: JSON.stringify(bundle) });
  if (res.status !== 200) throw new Error(`fixtures: ${res.status} ${JSON.stringify(res.body)}`);
  res.body.entry.forEach((e: Json, i: number) => pool.push({ n: ns[i], id: /Patient\/([^/]+)/.exec(e.response.location)?.[1] as string, aggregatedId: '' }));
}

/** What a refused interaction must leave untouched: the fixture's current version and what carries its identifier. */
async function snapshot(f: Fixture): Promise<Json> {
  const read = await call(tenant.token, `Patient/${f.id}`);
  const carrying = await call(tenant.token, `?_type=Patient,Observation&identifier=${CELL}|${f.n}&_count=100`);
  const found = (carrying.body.entry ?? []).map((e: Json) => `${e.resource.resourceType}/${e.resource.id}/${e.resource.meta.versionId}`).sort();
  return { read: [read.status, read.body.meta?.versionId, read.body.gender], found };
}

const INTERACTIONS: Interaction[] = [
  { name: 'read', needs: [['Patient', 'r']], writes: false, door: 'REST', ok: [200], run: (t, f) => call(t, `Patient/${f.id}`) },
  { name: 'vread', needs: [['Patient', 'r']], writes: false, door: 'REST', ok: [200], run: (t, f) => call(t, `Patient/${f.id}/_history/1`) },
  { name: 'history instance', needs: [['Patient', 'r']], writes: false, door: 'REST', ok: [200], run: (t, f) => call(t, `Patient/${f.id}/_history`) },
  { name: 'search', needs: [['Patient', 's']], writes: false, door: 'REST', ok: [200], run: (t, f) => call(t, `Patient?identifier=${CELL}|${f.n}`) },
  {
    name: 'POST _search',
    needs: [['Patient', 's']],
    writes: false,
    door: 'REST',
    ok: [200],
    run: (t, f) => call(t, 'Patient/_search', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `identifier=${CELL}|${f.n}` }),
  },
  { name: 'history type', needs: [['Patient', 's']], writes: false, door: 'REST', ok: [200], run: (t) => call(t, 'Patient/_history') },
  { name: 'search Observation', needs: [['Observation', 's']], writes: false, door: 'REST', ok: [200], run: (t, f) => call(t, `Observation?identifier=${CELL}|${f.n}`) },
  { name: 'create', needs: [['Patient', 'c']], writes: true, door: 'REST', ok: [201], run: (t, f) => call(t, 'Patient', { method: 'POST', body: JSON.stringify(patient(f.n)) }) },
  {
    name: 'conditional create',
    needs: [
      ['Patient', 'c'],
      ['Patient', 's'],
    ],
    writes: true,
    door: 'REST',
    ok: [201],
    run: (t, f) =>
      call(t, 'Patient', {
        method: 'POST',
        headers: { 'if-none-exist': `identifier=${CELL}|${f.n}-new` },
        body: JSON.stringify(
          patient(f.n, {
            identifier: [
              { system: CELL, value: f.n },
              { system: CELL, value: `${f.n}-new` },
            ],
          }),
        ),
      }),
  },
  {
    name: 'update',
    needs: [['Patient', 'u']],
    writes: true,
    door: 'REST',
    ok: [200],
    run: (t, f) => call(t, `Patient/${f.id}`, { method: 'PUT', body: JSON.stringify(patient(f.n, { id: f.id, gender: 'male' })) }),
  },
  {
    name: 'patch',
    needs: [['Patient', 'u']],
    writes: true,
    door: 'REST',
    ok: [200],
    run: (t, f) =>
      call(t, `Patient/${f.id}`, {
        method: 'PATCH',
        headers: { 'content-type': 'application/json-patch+json' },
        body: JSON.stringify([{ op: 'replace', path: '/gender', value: 'other' }]),
      }),
  },
  { name: 'delete', needs: [['Patient', 'd']], writes: true, door: 'REST', ok: [200, 204], run: (t, f) => call(t, `Patient/${f.id}`, { method: 'DELETE' }) },
  {
    name: 'conditional update',
    needs: [
      ['Patient', 'u'],
      ['Patient', 's'],
    ],
    writes: true,
    door: 'REST',
    ok: [200],
    run: (t, f) => call(t, `Patient?identifier=${CELL}|${f.n}`, { method: 'PUT', body: JSON.stringify(patient(f.n, { gender: 'male' })) }),
  },
  {
    name: 'conditional delete',
    needs: [
      ['Patient', 'd'],
      ['Patient', 's'],
    ],
    writes: true,
    door: 'REST',
    ok: [200, 204],
    run: (t, f) => call(t, `Patient?identifier=${CELL}|${f.n}`, { method: 'DELETE' }),
  },
  {
    name: 'create Observation',
    needs: [['Observation', 'c']],
    writes: true,
    door: 'REST',
    ok: [201],
    run: (t, f) =>
      call(t, 'Observation', {
        method: 'POST',
        body: JSON.stringify({
          resourceType: 'Observation',
          identifier: [{ system: CELL, value: f.n }],
          status: 'final',
          code: { text: 'x' },
          subject: { reference: `Patient/${f.id}` },
        }),
      }),
  },
  {
    name: 'read',
    needs: [['Patient', 'r']],
    writes: false,
    door: 'GraphQL',
    ok: [200],
    run: (t, f) => graphql(t, 'query ($ep: ID, $id: ID!) { Patient(id: $id, _endpoint: $ep) { id } }', { id: f.id }),
  },
  {
    name: 'list',
    needs: [['Patient', 's']],
    writes: false,
    door: 'GraphQL',
    ok: [200],
    run: (t, f) => graphql(t, `query ($ep: ID) { PatientList(identifier: "${CELL}|${f.n}", _endpoint: $ep) { id } }`),
  },
  {
    name: 'PatientCreate',
    needs: [['Patient', 'c']],
    writes: true,
    door: 'GraphQL',
    ok: [200],
    run: (t, f) => graphql(t, `mutation ($ep: ID) { PatientCreate(res: { identifier: [{ system: "${CELL}", value: "${f.n}" }] }, _endpoint: $ep) { id } }`),
  },
  {
    name: 'PatientUpdate',
    needs: [['Patient', 'u']],
    writes: true,
    door: 'GraphQL',
    ok: [200],
    run: (t, f) =>
      graphql(
        t,
        `mutation ($ep: ID, $id: ID!) { PatientUpdate(id: $id, res: { id: $id, identifier: [{ system: "${CELL}", value: "${f.n}" }], gender: "male" }, _endpoint: $ep) { id } }`,
        { id: f.id },
      ),
  },
  {
    name: 'PatientDelete',
    needs: [['Patient', 'd']],
    writes: true,
    door: 'GraphQL',
    ok: [200],
    run: (t, f) => graphql(t, 'mutation ($ep: ID, $id: ID!) { PatientDelete(id: $id, _endpoint: $ep) { issue { severity } } }', { id: f.id }),
  },
  {
    name: '$graphql system list',
    needs: [['Patient', 's']],
    writes: false,
    door: 'GraphQL',
    ok: [200],
    run: async (t, f) => viaOperation(await call(t, `$graphql?query=${encodeURIComponent(`{ PatientList(identifier: "${CELL}|${f.n}") { id } }`)}`)),
  },
  {
    name: '$graphql instance',
    needs: [['Patient', 'r']],
    writes: false,
    door: 'GraphQL',
    ok: [200],
    run: async (t, f) => viaOperation(await call(t, `Patient/${f.id}/$graphql?query=${encodeURIComponent('{ id gender }')}`)),
  },
  // An STU3 endpoint of the same customer: its `$graphql` has STU3's types (stu3Schema.ts), over the same services.
  {
    name: 'STU3 $graphql system list',
    needs: [['Patient', 's']],
    writes: false,
    door: 'GraphQL',
    ok: [200],
    run: async (t, f) => viaOperation(await call(t, `$graphql?query=${encodeURIComponent(`{ PatientList(identifier: "${CELL}|${f.n}") { id } }`)}`, {}, stu3BaseUrl)),
  },
  {
    name: 'STU3 $graphql list of an STU3-only type',
    needs: [['ProcedureRequest', 's']],
    writes: false,
    door: 'GraphQL',
    ok: [200],
    run: async (t) => viaOperation(await call(t, `$graphql?query=${encodeURIComponent('{ ProcedureRequestList(status: "active") { id intent } }')}`, {}, stu3BaseUrl)),
  },
  {
    name: 'STU3 $graphql instance',
    needs: [['Patient', 'r']],
    writes: false,
    door: 'GraphQL',
    ok: [200],
    run: async (t) => viaOperation(await call(t, `Patient/${stu3PatientId}/$graphql?query=${encodeURIComponent('{ id gender }')}`, {}, stu3BaseUrl)),
  },
  {
    name: 'read',
    needs: [['Patient', 'r']],
    writes: false,
    door: 'aggregated',
    ok: [200],
    run: (t, f) => call(t, `Patient/${f.aggregatedId}`, {}, `${server.url}/fhir/aggregated`),
  },
  {
    name: 'search',
    needs: [['Patient', 's']],
    writes: false,
    door: 'aggregated',
    ok: [200],
    run: (t) => call(t, `Patient?identifier=${NHS}|9000000042`, {}, `${server.url}/fhir/aggregated`),
  },
  {
    name: 'list of the aggregated record',
    needs: [['Patient', 's']],
    writes: false,
    door: 'GraphQL',
    ok: [200],
    run: (t) => graphql(t, `{ PatientList(identifier: "${NHS}|9000000042") { id } }`),
  },
];

async function client(scopes: string): Promise<{ clientId: string; clientSecret: string }> {
  const c = await server.admin<{ client_id: string; client_secret: string }>('POST', '/admin/clients', { customerId: tenant.customerId, family: 'fhir', scopes });
  return { clientId: c.client_id, clientSecret: c.client_secret };
}
async function tokenRequest(c: { clientId: string; clientSecret: string }, scope?: string): Promise<{ status: number; body: Json }> {
  const res = await fetch(`${server.url}/oauth2/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', client_id: c.clientId, client_secret: c.clientSecret, ...(scope ? { scope } : {}) }).toString(),
  });
  return { status: res.status, body: (await res.json()) as Json };
}

beforeAll(async () => {
  // Group aggregated, for Group-level $export (the newer doors).
  server = await startTestServer({ AGGREGATED_TYPES: '+Group' });
  tenant = await server.provision({ name: 'Scoped', defaultSourceOrg: 'Organization/org' });
  everything = await client('system/*.cruds');
  for (const set of SCOPE_SETS) {
    const issued = set.narrowed ? await tokenRequest(everything, set.scopes) : await tokenRequest(await client(set.scopes));
    if (issued.status !== 200) throw new Error(`${set.scopes}: ${issued.status} ${JSON.stringify(issued.body)}`);
    tokens.set(set.scopes, issued.body.access_token);
  }
  await call(tenant.token, 'Organization/org', {
    method: 'PUT',
    body: JSON.stringify({ resourceType: 'Organization', id: 'org', identifier: [{ system: 'https://fhir.nhs.uk/Id/ods-organization-code', value: 'SC' }] }),
  });
  await fillPool(1 + INTERACTIONS.filter((i) => i.writes).length * SCOPE_SETS.length);
  shared = await fixture();
  await call(tenant.token, `Patient/${shared.id}`, {
    method: 'PUT',
    body: JSON.stringify(
      patient(shared.n, {
        id: shared.id,
        identifier: [
          { system: CELL, value: shared.n },
          { system: NHS, value: '9000000042' },
        ],
      }),
    ),
  });
  const stu3 = await server.admin<{ id: string }>('POST', '/admin/endpoints', { customerId: tenant.customerId, fhirVersion: 'STU3' });
  stu3BaseUrl = `${server.url}/fhir/customer/${stu3.id}`;
  const twin = await call(tenant.token, 'Patient', { method: 'POST', body: JSON.stringify(patient(shared.n)) }, stu3BaseUrl);
  if (twin.status !== 201) throw new Error(`STU3 Patient: ${twin.status} ${JSON.stringify(twin.body)}`);
  stu3PatientId = twin.body.id;
  await call(
    tenant.token,
    'ProcedureRequest',
    {
      method: 'POST',
      body: JSON.stringify({ resourceType: 'ProcedureRequest', status: 'active', intent: 'order', code: { text: 'x' }, subject: { reference: `Patient/${stu3PatientId}` } }),
    },
    stu3BaseUrl,
  );
  await server.waitForAggregation();
  const agg = await call(tenant.token, `Patient?identifier=${NHS}|9000000042`, {}, `${server.url}/fhir/aggregated`);
  shared.aggregatedId = agg.body.entry[0].resource.id;
}, 120_000);
afterAll(() => server?.close());

const cells = INTERACTIONS.flatMap((interaction) =>
  SCOPE_SETS.map(({ scopes }) => {
    const allowed = interaction.needs.every(([type, p]) => permits(scopes, type, p));
    return { name: `${interaction.door} ${interaction.name} × ${scopes}: ${allowed ? 'allowed' : '403'}`, interaction, scopes, allowed };
  }),
);

test.each(cells)('$name', async ({ interaction, scopes, allowed }) => {
  const f = interaction.writes ? await fixture() : shared;
  const before = interaction.writes ? await snapshot(f) : undefined;
  const out = await interaction.run(tokens.get(scopes) as string, f);
  if (allowed) {
    if (interaction.door === 'GraphQL') expect({ status: out.status, error: out.graphqlError }).toEqual({ status: 200, error: undefined });
    else expect(interaction.ok).toContain(out.status);
    return;
  }
  // Refused: what the caller is told, and (for writes) the state seen with the all-scopes token, in one comparison.
  const after = before ? await snapshot(f) : undefined;
  if (interaction.door === 'GraphQL') {
    const ext = out.graphqlError?.extensions ?? {};
    expect({ code: ext.code, outcome: ext.resource?.resourceType, issue: ext.resource?.issue?.[0]?.code, state: after }).toEqual({
      code: 'FORBIDDEN',
      outcome: 'OperationOutcome',
      issue: 'forbidden',
      state: before,
    });
  } else {
    const challenge = out.headers.get('www-authenticate') ?? '';
    expect({
      status: out.status,
      outcome: out.body.resourceType,
      issue: out.body.issue?.[0]?.code,
      insufficientScope: challenge.includes('error="insufficient_scope"'),
      state: after,
    }).toEqual({
      status: 403,
      outcome: 'OperationOutcome',
      issue: 'forbidden',
      insufficientScope: true,
      state: before,
    });
  }
});

describe('Bundles are checked entry by entry', () => {
  const bundle = (type: 'transaction' | 'batch', n: string) => ({
    resourceType: 'Bundle',
    type,
    entry: [
      { fullUrl: `urn:uuid:${n}-p`, resource: patient(n), request: { method: 'POST', url: 'Patient' } },
      {
        resource: { resourceType: 'Observation', identifier: [{ system: CELL, value: n }], status: 'final', code: { text: 'x' }, subject: { reference: `urn:uuid:${n}-p` } },
        request: { method: 'POST', url: 'Observation' },
      },
    ],
  });
  const counts = async (n: string) => {
    const p = await call(tenant.token, `Patient?identifier=${CELL}|${n}&_total=accurate`);
    const o = await call(tenant.token, `Observation?identifier=${CELL}|${n}&_total=accurate`);
    return [p.body.total, o.body.total];
  };

  test('a transaction with one forbidden entry is 403 and writes nothing', async () => {
    const n = `tx${++seq}`;
    const out = await call(tokens.get('system/*.write') as string, '', { method: 'POST', body: JSON.stringify(bundle('transaction', n)) });
    expect(out.status).toBe(200);
    expect(await counts(n)).toEqual([1, 1]);
    const m = `tx${++seq}`;
    const scoped = await tokenRequest(await client('system/Patient.c'));
    const refused = await call(scoped.body.access_token, '', { method: 'POST', body: JSON.stringify(bundle('transaction', m)) });
    expect(refused.status).toBe(403);
    expect(refused.body.issue?.[0]?.code).toBe('forbidden');
    expect(JSON.stringify(refused.body)).toContain('Bundle.entry[1]');
    expect(await counts(m)).toEqual([0, 0]);
  });

  test('a batch fails only the forbidden entry', async () => {
    const n = `b${++seq}`;
    const scoped = await tokenRequest(await client('system/Patient.c'));
    const out = await call(scoped.body.access_token, '', {
      method: 'POST',
      body: JSON.stringify({ ...bundle('batch', n), entry: bundle('batch', n).entry.map((e, i) => (i === 1 ? { ...e, resource: { ...e.resource, subject: undefined } } : e)) }),
    });
    expect(out.status).toBe(200);
    expect(out.body.entry.map((e: Json) => e.response.status.slice(0, 3))).toEqual(['201', '403']);
    expect(out.body.entry[1].response.outcome?.issue?.[0]?.code).toBe('forbidden');
    expect(await counts(n)).toEqual([1, 0]);
  });
});

describe('the token endpoint', () => {
  test('a narrower scope is granted as asked; a wider one is invalid_scope', async () => {
    const c = await client('system/Patient.rs');
    const narrow = await tokenRequest(c, 'system/Patient.r');
    expect(narrow).toMatchObject({ status: 200, body: { scope: 'system/Patient.r' } });
    const wide = await tokenRequest(c, 'system/Patient.cruds');
    expect(wide).toMatchObject({ status: 400, body: { error: 'invalid_scope' } });
    expect((await tokenRequest(c, 'system/Observation.rs')).body.error).toBe('invalid_scope');
  });
});

describe('a search reaching through a type without scope matches nothing', () => {
  let obsCode: string;
  beforeAll(async () => {
    obsCode = `OBS-${++seq}`;
    const res = await call(tenant.token, 'Observation', {
      method: 'POST',
      body: JSON.stringify({
        resourceType: 'Observation',
        status: 'final',
        code: { coding: [{ system: 'urn:x', code: obsCode }] },
        subject: { reference: `Patient/${shared.id}` },
      }),
    });
    if (res.status !== 201) throw new Error(JSON.stringify(res.body));
    await server.waitForAggregation();
  });
  const get = async (token: string, path: string, base?: string) => (await call(token, path, {}, base ?? `${server.url}/fhir/aggregated`)).body;

  test.each([
    ['aggregated', '_has'],
    ['customer', '_has'],
  ])('%s %s:Observation with system/Patient.rs: the same total as for a code that does not exist', async (where, _has) => {
    const token = tokens.get('system/Patient.rs') as string;
    const base = where === 'customer' ? tenant.baseUrl : undefined;
    const hit = await get(token, `Patient?${_has}:Observation:subject:code=urn:x|${obsCode}&_summary=count`, base);
    const none = await get(token, `Patient?${_has}:Observation:subject:code=urn:x|NO-SUCH-CODE&_summary=count`, base);
    expect({ status: 200, total: hit.total }).toEqual({ status: 200, total: none.total });
    // The same token with Observation scope does find it: the probe could have matched.
    expect((await get(tenant.token, `Patient?_has:Observation:subject:code=urn:x|${obsCode}&_summary=count`, base)).total).toBe(1);
  });

  test('_revinclude of Observation with system/Patient.rs includes no Observation', async () => {
    const bundle = await get(tokens.get('system/Patient.rs') as string, `Patient?_id=${shared.aggregatedId}&_revinclude=Observation:subject`);
    expect(bundle.entry.map((e: Json) => e.resource.resourceType)).toEqual(['Patient']);
    const full = await get(tenant.token, `Patient?_id=${shared.aggregatedId}&_revinclude=Observation:subject`);
    expect(full.entry.map((e: Json) => e.resource.resourceType)).toContain('Observation');
  });

  test('_include of Patient with system/Observation.* includes no Patient', async () => {
    const bundle = await get(tokens.get('system/Observation.*') as string, `Observation?code=urn:x|${obsCode}&_include=Observation:subject`);
    expect(bundle.entry.map((e: Json) => e.resource.resourceType)).toEqual(['Observation']);
  });

  test('a chain through Patient with system/Observation.* matches nothing', async () => {
    const hit = await get(tokens.get('system/Observation.*') as string, `Observation?code=urn:x|${obsCode}&subject:Patient.identifier=${NHS}|9000000042&_total=accurate`);
    expect(hit.total).toBe(0);
    expect((await get(tenant.token, `Observation?code=urn:x|${obsCode}&subject:Patient.identifier=${NHS}|9000000042&_total=accurate`)).total).toBe(1);
  });

  test('GraphQL reverse reference to Observation with system/Patient.rs shows no Observation', async () => {
    const out = await graphql(tokens.get('system/Patient.rs') as string, `{ Patient(id: "${shared.aggregatedId}") { id ObservationList(_reference: subject) { id } } }`);
    expect(out.body.data?.Patient?.ObservationList ?? []).toEqual([]);
    const full = await graphql(tenant.token, `{ Patient(id: "${shared.aggregatedId}") { id ObservationList(_reference: subject) { id } } }`);
    expect(full.body.data.Patient.ObservationList).toHaveLength(1);
  });
});

/**
 * The doors added after the matrix above (issues 14, 17, 18, 19): the facade and demographics (legacy
 * tokens, X-Org-Public-Id), `$everything` and bulk export on the aggregated endpoint, the aggregation report,
 * the native record's GraphQL queries and mutations, and GraphQL subscriptions. Each × every scope set:
 * allowed, or refused as its door refuses (REST 403 `insufficient_scope`, GraphQL `FORBIDDEN` with the
 * OperationOutcome). Legacy clients get the scope sets directly (the legacy token endpoint is not narrowed here).
 */
describe('newer doors', () => {
  const TEAM_ALIAS = 'https://fhir.patientsknowbest.com/structuredefinition/team-alias';
  const NATIVE_NHS = '9449305552';
  const legacyTokens = new Map<string, string>();
  let orgPublicId: string;
  let nativePatientId: string;
  let broadToken: string;
  /** A completed export of the broad client (system/*.cruds) whose narrowed tokens poll it. */
  let job: { statusUrl: string; patientFile: string };
  /** The aggregated id of the tenant's Group of the shared Patient. */
  let groupId: string;

  const aggregated = (token: string, path: string, init: RequestInit = {}) => call(token, path, init, `${server.url}/fhir/aggregated`);
  const legacy = (token: string, path: string, init: RequestInit = {}) =>
    call(token, path, { ...init, headers: { 'x-org-public-id': orgPublicId, ...(init.headers as Record<string, string>) } }, server.url);
  const stu3Patient = () => ({
    resourceType: 'Patient',
    identifier: [{ system: NHS, value: NATIVE_NHS }],
    name: [{ family: 'Native', given: ['Nell'] }],
    birthDate: '1970-01-02',
    extension: [{ url: TEAM_ALIAS, valueString: 'main' }],
  });
  const local = (url: string) => url.slice(url.indexOf('/fhir/aggregated/') + '/fhir/aggregated/'.length);
  /** The first event of a subscription, or its refusal, as a GraphQL outcome. */
  async function firstEvent(token: string, query: string, variables: Json): Promise<Outcome> {
    const live = subscribe(server.url, token, query, variables);
    try {
      const never = new Promise<never>(() => undefined);
      // The first event, or the end of the subscription (then waitFor rejects, and ended() says why).
      const first = await Promise.race([
        live
          .waitFor(() => true)
          .then(
            (event) => ({ event }),
            () => never,
          ),
        live.ended().then((error) => ({ error })),
      ]);
      const error = 'error' in first ? (Array.isArray(first.error) ? first.error[0] : first.error) : undefined;
      return { status: 200, body: 'event' in first ? first.event : {}, headers: new Headers(), graphqlError: error as Json | undefined };
    } finally {
      await live.close();
    }
  }
  /** A Bulk Data kick-off by POST with a Parameters body. */
  const postExport = (token: string, path: string, parameter: Json[]) =>
    aggregated(token, path, { method: 'POST', headers: { prefer: 'respond-async' }, body: JSON.stringify({ resourceType: 'Parameters', parameter }) });
  const patientParameter = () => ({ name: 'patient', valueReference: { reference: `Patient/${shared.aggregatedId}` } });
  /** Some search on some type: what a system-wide search or an export of every type needs. */
  const searchesSome = (scopes: string) =>
    scopes.split(' ').some((scope) => {
      const m = /^system\/([A-Za-z]+|\*)\./.exec(scope);
      return m !== null && permits(scope, m[1] === '*' ? 'Patient' : m[1], 's');
    });
  const readsOrSearches = (scopes: string, type: string) => permits(scopes, type, 'r') || permits(scopes, type, 's');

  interface DoorCell {
    door: 'REST' | 'GraphQL';
    name: string;
    /** Whether the scope set allows it (written out from the scope letters, not from the server's code). */
    allowed(scopes: string): boolean;
    /** Which scope sets the cell is tried with (default: all). */
    sets?: (set: { scopes: string; narrowed?: boolean }) => boolean;
    ok: number[];
    run(scopes: string): Promise<Outcome>;
  }
  const needs =
    (...list: [string, string][]) =>
    (scopes: string) =>
      list.every(([type, p]) => permits(scopes, type, p));
  const native =
    (query: string, variables: Json = {}) =>
    (scopes: string) =>
      graphql(tokens.get(scopes) as string, query, variables);

  const DOORS: DoorCell[] = [
    { door: 'REST', name: 'facade read', allowed: needs(['Patient', 'r']), ok: [200], run: (s) => legacy(legacyTokens.get(s) as string, `fhir/facade/Patient/${nativePatientId}`) },
    { door: 'REST', name: 'facade search', allowed: needs(['Patient', 's']), ok: [200], run: (s) => legacy(legacyTokens.get(s) as string, 'fhir/facade/Patient') },
    {
      door: 'REST',
      name: 'demographics $process-message',
      allowed: needs(['Patient', 'c'], ['Patient', 'u']),
      ok: [200, 201],
      run: (s) => legacy(legacyTokens.get(s) as string, 'fhir/demographics/Patient/$process-message', { method: 'POST', body: JSON.stringify(stu3Patient()) }),
    },
    {
      door: 'REST',
      name: 'aggregated $everything',
      allowed: needs(['Patient', 'r']),
      ok: [200],
      run: (s) => aggregated(tokens.get(s) as string, `Patient/${shared.aggregatedId}/$everything`),
    },
    {
      door: 'REST',
      name: 'aggregated Patient/$export?_type=Patient',
      allowed: needs(['Patient', 's']),
      ok: [202],
      run: (s) => aggregated(tokens.get(s) as string, 'Patient/$export?_type=Patient', { headers: { prefer: 'respond-async' } }),
    },
    {
      door: 'REST',
      // Reading the Group needs r on it (SMART bulk data: the client reads the Group it names); the export, s on its types.
      name: 'aggregated Group/[id]/$export?_type=Patient',
      allowed: needs(['Group', 'r'], ['Patient', 's']),
      ok: [202],
      run: (s) => aggregated(tokens.get(s) as string, `Group/${groupId}/$export?_type=Patient`, { headers: { prefer: 'respond-async' } }),
    },
    {
      door: 'REST',
      // The POST kick-off (a Parameters body) asks what the GET one does.
      name: 'aggregated POST $export, _type=Patient',
      allowed: needs(['Patient', 's']),
      ok: [202],
      run: (s) => postExport(tokens.get(s) as string, '$export', [{ name: '_type', valueString: 'Patient' }]),
    },
    {
      door: 'REST',
      // `patient` names Patients, read as the caller reads them: r on Patient besides the export's s.
      name: 'aggregated POST Patient/$export with patient, _type=Patient',
      allowed: needs(['Patient', 'r'], ['Patient', 's']),
      ok: [202],
      run: (s) => postExport(tokens.get(s) as string, 'Patient/$export', [{ name: '_type', valueString: 'Patient' }, patientParameter()]),
    },
    {
      door: 'REST',
      name: 'aggregated POST Group/[id]/$export with patient, _type=Patient',
      allowed: needs(['Group', 'r'], ['Patient', 'r'], ['Patient', 's']),
      ok: [202],
      run: (s) => postExport(tokens.get(s) as string, `Group/${groupId}/$export`, [{ name: '_type', valueString: 'Patient' }, patientParameter()]),
    },
    {
      door: 'REST',
      name: 'aggregated $export of every type',
      allowed: searchesSome,
      ok: [202],
      run: (s) => aggregated(tokens.get(s) as string, '$export', { headers: { prefer: 'respond-async' } }),
    },
    {
      door: 'REST',
      name: 'aggregated $export-status (same client, narrowed token)',
      allowed: (s) => ['Patient', 'Observation'].some((t) => readsOrSearches(s, t)),
      sets: (set) => set.narrowed === true,
      ok: [200],
      run: (s) => aggregated(tokens.get(s) as string, job.statusUrl),
    },
    {
      door: 'REST',
      name: 'aggregated $export-file of Patients (same client, narrowed token)',
      allowed: (s) => readsOrSearches(s, 'Patient'),
      sets: (set) => set.narrowed === true,
      ok: [200],
      run: (s) => aggregated(tokens.get(s) as string, job.patientFile),
    },
    { door: 'REST', name: 'customer $aggregation-report', allowed: searchesSome, ok: [200], run: (s) => call(tokens.get(s) as string, '$aggregation-report') },
    {
      door: 'GraphQL',
      name: 'aggregationReport',
      allowed: searchesSome,
      ok: [200],
      run: (s) => graphql(tokens.get(s) as string, 'query ($ep: ID!) { aggregationReport(endpoint: $ep) { endpoint } }'),
    },
    {
      door: 'GraphQL',
      name: 'nativePatient',
      allowed: needs(['Patient', 'r']),
      ok: [200],
      run: (s) => native('query ($id: ID!) { nativePatient(id: $id) { id } }', { id: nativePatientId })(s),
    },
    { door: 'GraphQL', name: 'nativePatients', allowed: needs(['Patient', 's']), ok: [200], run: native('{ nativePatients(count: 1) { id } }') },
    {
      door: 'GraphQL',
      name: 'nativeSavePatient',
      allowed: needs(['Patient', 'c'], ['Patient', 'u']),
      ok: [200],
      run: native('mutation ($i: NativePatientInput!) { nativeSavePatient(input: $i) { id } }', { i: { nhsNumber: NATIVE_NHS, family: 'Native', given: ['Nell'] } }),
    },
    {
      door: 'GraphQL',
      name: 'nativeAddTimelineEntry (measurement)',
      allowed: needs(['Observation', 'c']),
      ok: [200],
      run: (s) =>
        native('mutation ($i: NativeEntryInput!) { nativeAddTimelineEntry(input: $i) { id } }', {
          i: { patientId: nativePatientId, kind: 'measurement', occurredAt: '2026-12-01T09:30:00Z', codeSystem: 'LOINC', code: '4548-4', value: '7.1', unit: '%' },
        })(s),
    },
    {
      door: 'GraphQL',
      name: 'nativeTimeline (measurements)',
      allowed: needs(['Observation', 's']),
      ok: [200],
      run: (s) => native('query ($p: ID!) { nativeTimeline(patientId: $p, kind: "measurement") { id } }', { p: nativePatientId })(s),
    },
    { door: 'GraphQL', name: 'nativeQuestionnaires', allowed: needs(['Questionnaire', 's']), ok: [200], run: native('{ nativeQuestionnaires { id } }') },
    {
      door: 'GraphQL',
      name: 'nativeLetters',
      allowed: needs(['Communication', 's']),
      ok: [200],
      run: (s) => native('query ($p: ID!) { nativeLetters(patientId: $p) { id } }', { p: nativePatientId })(s),
    },
    {
      door: 'GraphQL',
      name: 'subscription patientRecordChanged',
      allowed: needs(['Patient', 'r']),
      ok: [200],
      run: (s) => firstEvent(tokens.get(s) as string, 'subscription ($p: ID!) { patientRecordChanged(patient: $p, since: "0") { type id } }', { p: shared.aggregatedId }),
    },
    {
      door: 'GraphQL',
      name: 'subscription resourceChanged(Patient)',
      allowed: needs(['Patient', 's']),
      ok: [200],
      run: (s) => firstEvent(tokens.get(s) as string, 'subscription { resourceChanged(type: "Patient", since: "0") { type id } }', {}),
    },
  ];

  beforeAll(async () => {
    const customer = (await server.admin<Json>('GET', '/admin/customers')).customers.find((c: Json) => c.id === tenant.customerId);
    const organization = await server.admin<Json>('GET', `/admin/organizations/${customer.defaultOrganizationId}`);
    orgPublicId = organization.publicId;
    await server.admin('PATCH', `/admin/teams/${organization.defaultTeamId}`, { alias: 'main' });
    for (const { scopes } of SCOPE_SETS) {
      const c = await server.admin<Json>('POST', '/admin/clients', { customerId: tenant.customerId, family: 'legacy', scopes });
      legacyTokens.set(scopes, await server.token(c.client_id, c.client_secret, 'legacy'));
    }
    const created = await legacy(legacyTokens.get('system/*.cruds') as string, 'fhir/demographics/Patient/$process-message', {
      method: 'POST',
      body: JSON.stringify(stu3Patient()),
    });
    if (created.status !== 201) throw new Error(`demographics: ${created.status} ${JSON.stringify(created.body)}`);
    nativePatientId = created.body.id;
    const group = { resourceType: 'Group', id: 'cohort', type: 'person', actual: true, member: [{ entity: { reference: `Patient/${shared.id}` } }] };
    await call(tenant.token, 'Group/cohort', { method: 'PUT', body: JSON.stringify(group) });
    await server.waitForAggregation();
    groupId = (await aggregated(tenant.token, 'Group')).body.entry[0].resource.id;
    // The broad client is the one the narrowed tokens were asked from: its job is theirs to poll.
    broadToken = (await tokenRequest(everything)).body.access_token;
    const kicked = await aggregated(broadToken, '$export?_type=Patient,Observation', { headers: { prefer: 'respond-async' } });
    if (kicked.status !== 202) throw new Error(`export: ${kicked.status} ${JSON.stringify(kicked.body)}`);
    const statusUrl = local(kicked.headers.get('content-location') as string);
    for (;;) {
      const status = await aggregated(broadToken, statusUrl);
      if (status.status === 200) {
        const patientFile = status.body.output.find((o: Json) => o.type === 'Patient');
        job = { statusUrl, patientFile: local(patientFile.url) };
        break;
      }
      if (status.status !== 202) throw new Error(`export status: ${status.status} ${JSON.stringify(status.body)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }, 120_000);

  const doorCells = DOORS.flatMap((cell) =>
    SCOPE_SETS.filter((set) => (cell.sets ? cell.sets(set) : true)).map(({ scopes }) => ({
      name: `${cell.door} ${cell.name} × ${scopes}: ${cell.allowed(scopes) ? 'allowed' : 'refused'}`,
      cell,
      scopes,
      allowed: cell.allowed(scopes),
    })),
  );

  test.each(doorCells)('$name', async ({ cell, scopes, allowed }) => {
    const out = await cell.run(scopes);
    if (allowed) {
      if (cell.door === 'GraphQL') expect({ status: out.status, error: out.graphqlError }).toEqual({ status: 200, error: undefined });
      // On a wrong status the body shows why.
      else if (!cell.ok.includes(out.status)) expect({ status: out.status, body: out.body }).toEqual({ status: cell.ok[0], body: {} });
      return;
    }
    if (cell.door === 'GraphQL') {
      const ext = out.graphqlError?.extensions ?? {};
      expect({ code: ext.code, outcome: ext.resource?.resourceType, issue: ext.resource?.issue?.[0]?.code }).toEqual({
        code: 'FORBIDDEN',
        outcome: 'OperationOutcome',
        issue: 'forbidden',
      });
    } else {
      const challenge = out.headers.get('www-authenticate') ?? '';
      expect({ status: out.status, outcome: out.body.resourceType, issue: out.body.issue?.[0]?.code, insufficientScope: challenge.includes('error="insufficient_scope"') }).toEqual(
        {
          status: 403,
          outcome: 'OperationOutcome',
          issue: 'forbidden',
          insufficientScope: true,
        },
      );
    }
  });

  test('another client polling the job or fetching its file reads it as missing (404)', async () => {
    // Its own client, reading Observations: past the scope check, the job is not its.
    const other = tokens.get('system/Observation.*') as string;
    expect((await aggregated(other, job.statusUrl)).status).toBe(404);
    expect((await aggregated(other, job.patientFile)).status).toBe(404);
  });

  test('adminAggregationReport: a client token of every scope is refused; the admin token is served', async () => {
    const query = 'query ($ep: ID!) { adminAggregationReport(endpoint: $ep) { endpoint } }';
    const refused = await graphql(tokens.get('system/*.cruds') as string, query);
    expect(refused.graphqlError?.extensions?.code).toBe('UNAUTHENTICATED');
    const served = await graphql(server.adminToken, query);
    expect({ error: served.graphqlError, endpoint: served.body.data?.adminAggregationReport?.endpoint }).toEqual({ error: undefined, endpoint: tenant.endpointId });
  });
});
