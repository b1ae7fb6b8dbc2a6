import { startTestServer, type Tenant, type TestServer } from '../support/testServer';
import { subscribe } from '../support/liveClient';

/**
 * Issue 18 (1): the live record. GraphQL subscriptions over graphql-ws on /graphql, fed by the aggregation's
 * commits (the aggregation runs on its own thread with its own connections: events reach this server only
 * through PostgreSQL NOTIFY), authenticated at connection, authorised for each event as the subscriber, and
 * resumable from a cursor. Every wait is for an event; an event that must not arrive is shown absent when a
 * later one (written after it) has arrived, as each subscription's events come in log order.
 */
type Json = Record<string, any>;
const NHS = 'https://fhir.nhs.uk/Id/nhs-number';
const LABEL = 'http://fhir.patientsknowbest.com/codesystem/privacy-label';
const LOINC = 'http://loinc.org';

let server: TestServer;
let a: Tenant;
let b: Tenant;
let patient: string;

async function put(t: Tenant, resource: Json): Promise<void> {
  const res = await t.fetch(`${resource.resourceType}/${resource.id}`, { method: 'PUT', body: JSON.stringify(resource) });
  if (res.status >= 300) throw new Error(`${res.status} ${await res.text()}`);
}

function observation(id: string, patientRef: string, code = '29463-7', label?: string): Json {
  return {
    resourceType: 'Observation',
    id,
    status: 'final',
    code: { coding: [{ system: LOINC, code }] },
    subject: { reference: patientRef },
    valueQuantity: { value: 70, unit: 'kg', system: 'http://unitsofmeasure.org', code: 'kg' },
    ...(label ? { meta: { security: [{ system: LABEL, code: label }] } } : {}),
  };
}

const RECORD = `subscription ($patient: ID!, $since: String) {
  patientRecordChanged(patient: $patient, since: $since) { cursor type id versionId change patient resource { id ... on Observation { status } } }
}`;
const TYPE = `subscription ($criteria: String, $since: String) {
  resourceChanged(type: "Observation", criteria: $criteria, since: $since) { cursor type id change resource { id } }
}`;

/** The aggregated id of an upstream resource (its aggregation status, through GraphQL). */
async function aggregatedId(t: Tenant, type: string, id: string): Promise<string> {
  const res = await fetch(`${server.url}/graphql`, {
    method: 'POST',
    headers: { authorization: `Bearer ${t.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      query: 'query ($e: ID!, $t: String!, $i: ID!) { aggregationStatus(endpoint: $e, resourceType: $t, id: $i) { status aggregatedId } }',
      variables: { e: t.endpointId, t: type, i: id },
    }),
  });
  const body = (await res.json()) as Json;
  const found = body.data?.aggregationStatus?.aggregatedId;
  if (!found) throw new Error(`no aggregated id for ${type}/${id}: ${JSON.stringify(body)}`);
  return found;
}

beforeAll(async () => {
  server = await startTestServer();
  a = await server.provision({ name: 'Trust A', defaultSourceOrg: 'Organization/orgA' });
  b = await server.provision({ name: 'Trust B', defaultSourceOrg: 'Organization/orgB' });
  // Each feed's default source organisation, with an identifier: without it the feed's copies are excluded.
  await put(a, { resourceType: 'Organization', id: 'orgA', identifier: [{ system: 'urn:test:org', value: 'A' }], name: 'Trust A' });
  await put(b, { resourceType: 'Organization', id: 'orgB', identifier: [{ system: 'urn:test:org', value: 'B' }], name: 'Trust B' });
  await put(a, { resourceType: 'Patient', id: 'pa', identifier: [{ system: NHS, value: '9449305552' }], name: [{ family: 'Smith', given: ['Ann'] }] });
  await put(b, { resourceType: 'Patient', id: 'pb', identifier: [{ system: NHS, value: '9449305552' }], name: [{ family: 'Smith', given: ['Annie'] }] });
  await server.waitForAggregation();
  const found = (await (await server.aggregated(a, `Patient?identifier=${NHS}|9449305552`)).json()) as Json;
  patient = found.entry[0].resource.id;
}, 120_000);
afterAll(() => server.close());

test('a new Observation on a customer endpoint reaches a subscriber to the patient record once it is aggregated', async () => {
  const live = subscribe(server.url, a.token, RECORD, { patient, since: '0' });
  try {
    await put(a, observation('o-live-1', 'Patient/pa'));
    const event = await live.waitFor((e) => e.type === 'Observation' && e.change === 'create');
    expect(event).toMatchObject({ type: 'Observation', versionId: '1', change: 'create', patient, resource: { status: 'final' } });
    expect(event.resource.id).toBe(event.id);
    expect(event.cursor).toMatch(/^\d+$/);
    // The aggregated Observation the event names is the one the REST door serves.
    const read = await server.aggregated(a, `Observation/${event.id}`);
    expect(read.status).toBe(200);
  } finally {
    await live.close();
  }
});

test('a connection without a valid token is refused, and so is a subscription to a patient the caller cannot see', async () => {
  for (const token of [undefined, 'not-a-token']) {
    const refused = subscribe(server.url, token, RECORD, { patient });
    expect(String(((await refused.ended()) as { code?: number })?.code)).toBe('4403');
    await refused.close();
  }
  const stranger = await server.provision({ name: 'Stranger' });
  const hidden = subscribe(server.url, stranger.token, RECORD, { patient });
  await hidden.ended();
  expect(JSON.stringify(hidden.error)).toMatch(/Patient\/.* is not known/);
  await hidden.close();
});

test("a subscriber gets only what it may see: another customer's unlabelled Observation never reaches it", async () => {
  const liveB = subscribe(server.url, b.token, TYPE, { since: '0' });
  try {
    await put(a, observation('o-a-private', 'Patient/pa'));
    await server.waitForAggregation();
    await put(b, observation('o-b-own', 'Patient/pb'));
    const own = await liveB.waitFor((e) => e.resource?.id && e.change === 'create');
    const ownId = await aggregatedId(b, 'Observation', 'o-b-own');
    await liveB.waitFor((e) => e.id === ownId);
    const aId = await aggregatedId(a, 'Observation', 'o-a-private');
    expect(liveB.events.map((e) => e.id)).not.toContain(aId);
    expect(own).toBeDefined();
  } finally {
    await liveB.close();
  }
});

test('a granted label lets events through, and revoking the grant stops them', async () => {
  // Consent is granted to a team: B's web UI acts as a team of B's organisation.
  const customer = (await server.admin<Json>('GET', '/admin/customers')).customers.find((c: Json) => c.id === b.customerId);
  const team = await server.admin<Json>('POST', '/admin/teams', { organizationId: customer.defaultOrganizationId, name: 'Ward B' });
  const client = await server.admin<Json>('POST', '/admin/clients', { organizationId: customer.defaultOrganizationId, teamId: team.id, family: 'fhir' });
  const teamToken = await server.token(client.client_id, client.client_secret);
  const liveB = subscribe(server.url, teamToken, RECORD, { patient, since: '0' });
  const grant = { patientId: patient, grantee: `CareTeam/${team.id}`, label: 'GENERAL_HEALTH' };
  try {
    await server.admin('POST', '/admin/consents', grant);
    await put(a, observation('o-granted', 'Patient/pa', '29463-7', 'GENERAL_HEALTH'));
    const grantedId = await (async () => {
      await server.waitForAggregation();
      return aggregatedId(a, 'Observation', 'o-granted');
    })();
    await liveB.waitFor((e) => e.id === grantedId && e.change === 'create');

    await server.admin('DELETE', '/admin/consents', grant);
    await put(a, observation('o-after-revoke', 'Patient/pa', '29463-7', 'GENERAL_HEALTH'));
    await server.waitForAggregation();
    await put(b, observation('o-b-sentinel', 'Patient/pb'));
    await server.waitForAggregation();
    const sentinel = await aggregatedId(b, 'Observation', 'o-b-sentinel');
    await liveB.waitFor((e) => e.id === sentinel);
    const afterRevoke = await aggregatedId(a, 'Observation', 'o-after-revoke');
    expect(liveB.events.map((e) => e.id)).not.toContain(afterRevoke);
  } finally {
    await liveB.close();
  }
});

test('search criteria narrow a type subscription to the matching resources', async () => {
  const heartRate = subscribe(server.url, a.token, TYPE, { criteria: `code=${LOINC}|8867-4` });
  try {
    // The subscription is in place once it has replayed nothing and a first matching write arrives.
    await put(a, observation('o-weight', 'Patient/pa', '29463-7'));
    await put(a, observation('o-pulse', 'Patient/pa', '8867-4'));
    await server.waitForAggregation();
    const pulse = await aggregatedId(a, 'Observation', 'o-pulse');
    const weight = await aggregatedId(a, 'Observation', 'o-weight');
    // Replayed from the start so that the order of subscribing and writing does not matter.
    const replayed = subscribe(server.url, a.token, TYPE, { criteria: `code=${LOINC}|8867-4`, since: '0' });
    await replayed.waitFor((e) => e.id === pulse);
    expect(replayed.events.map((e) => e.id)).not.toContain(weight);
    await replayed.close();
  } finally {
    await heartRate.close();
  }
});

test('a bulk write of more changes than one delivery batch reaches a type subscriber complete, in order, only what matches and it may see', async () => {
  // From the start of the log (no other test writes this code), so that a subscription still being set up when
  // the first write is aggregated cannot miss it; the bulk below is written once that one arrived, so it comes live.
  const live = subscribe(server.url, a.token, TYPE, { criteria: `code=${LOINC}|2708-6`, since: '0' });
  try {
    await put(a, observation('o-bulk-first', 'Patient/pa', '2708-6'));
    await server.waitForAggregation();
    const first = await aggregatedId(a, 'Observation', 'o-bulk-first');
    await live.waitFor((e) => e.id === first);
    // 150 Observations in one transaction (two thirds matching), and B's matching unlabelled ones, which A may not see.
    const entry = Array.from({ length: 150 }, (_, i) => ({
      resource: observation(`o-bulk-${i}`, 'Patient/pa', i % 3 === 0 ? '8310-5' : '2708-6'),
      request: { method: 'PUT', url: `Observation/o-bulk-${i}` },
    }));
    const res = await a.fetch('', { method: 'POST', body: JSON.stringify({ resourceType: 'Bundle', type: 'transaction', entry }) });
    expect(res.status).toBe(200);
    await put(b, observation('o-bulk-b', 'Patient/pb', '2708-6'));
    await put(a, observation('o-bulk-last', 'Patient/pa', '2708-6'));
    await server.waitForAggregation();
    const last = await aggregatedId(a, 'Observation', 'o-bulk-last');
    const hidden = await aggregatedId(b, 'Observation', 'o-bulk-b');
    await live.waitFor((e) => e.id === last);
    const expected = [first];
    for (let i = 0; i < 150; i++) if (i % 3 !== 0) expected.push(await aggregatedId(a, 'Observation', `o-bulk-${i}`));
    expected.push(last);
    const ids = live.events.map((e) => e.id);
    expect(new Set(ids)).toEqual(new Set(expected));
    expect(ids).toHaveLength(expected.length);
    expect(ids).not.toContain(hidden);
    const cursors = live.events.map((e) => BigInt(e.cursor));
    expect(cursors.every((c, i) => i === 0 || c > cursors[i - 1])).toBe(true);
  } finally {
    await live.close();
  }
});

test('a bad criteria parameter is a clear error on subscribing', async () => {
  const bad = subscribe(server.url, a.token, TYPE, { criteria: 'no-such-param=1' });
  await bad.ended();
  expect(JSON.stringify(bad.error)).toMatch(/no-such-param/);
  await bad.close();
});

test('a subscriber that reconnects with its last cursor gets what it missed, in log order, without repeats', async () => {
  const first = subscribe(server.url, a.token, RECORD, { patient, since: '0' });
  await put(a, observation('o-r1', 'Patient/pa'));
  await server.waitForAggregation();
  const r1 = await aggregatedId(a, 'Observation', 'o-r1');
  const seen = await first.waitFor((e) => e.id === r1);
  await first.close();

  // Written while nobody listens: o-r2, o-r3, then o-r2 again.
  await put(a, observation('o-r2', 'Patient/pa'));
  await put(a, observation('o-r3', 'Patient/pa'));
  await put(a, { ...observation('o-r2', 'Patient/pa'), status: 'amended' });
  await server.waitForAggregation();
  const r2 = await aggregatedId(a, 'Observation', 'o-r2');
  const r3 = await aggregatedId(a, 'Observation', 'o-r3');
  const r2Now = (await (await server.aggregated(a, `Observation/${r2}`)).json()) as Json;
  expect(r2Now.status).toBe('amended');

  const resumed = subscribe(server.url, a.token, RECORD, { patient, since: seen.cursor });
  try {
    await resumed.waitFor((e) => e.id === r3);
    await resumed.waitFor((e) => e.id === r2 && e.versionId === r2Now.meta.versionId);
    const ids = resumed.events.map((e) => e.id);
    expect(ids).not.toContain(r1);
    expect(ids.filter((id) => id === r3)).toHaveLength(1);
    // One resource's changes come in the order they were made, each once; the last is the amended version.
    // (Two resources written by separate transactions come in the order the aggregation committed them, which
    // two aggregation loops working side by side may swap: positions follow commit order, README "Live record".)
    const r2Versions = resumed.events.filter((e) => e.id === r2).map((e) => Number(e.versionId));
    expect(r2Versions).toEqual([...new Set(r2Versions)].sort((x, y) => x - y));
    expect(r2Versions[r2Versions.length - 1]).toBe(Number(r2Now.meta.versionId));
    const cursors = resumed.events.map((e) => BigInt(e.cursor));
    expect(cursors.every((c, i) => i === 0 || c > cursors[i - 1])).toBe(true);
  } finally {
    await resumed.close();
  }
});

test('replaying from the start gives every change in log order, past cursor 9 too (cursors are numbers, not text)', async () => {
  const first = await aggregatedId(a, 'Observation', 'o-live-1');
  const latest = await aggregatedId(a, 'Observation', 'o-r3');
  const replay = subscribe(server.url, a.token, RECORD, { patient, since: '0' });
  try {
    await replay.waitFor((e) => e.id === latest);
    const cursors = replay.events.map((e) => Number(e.cursor));
    expect(Math.max(...cursors)).toBeGreaterThan(9);
    expect(cursors).toEqual([...cursors].sort((x, y) => x - y));
    // An early change (a one-digit cursor) is not lost behind the later ones.
    expect(replay.events.map((e) => e.id)).toContain(first);
    expect(replay.events.filter((e) => e.type === 'Patient').length).toBeGreaterThan(0);
  } finally {
    await replay.close();
  }
});

test('revoking the subscriber’s client ends its subscription at the next event', async () => {
  const extra = await server.admin<{ client_id: string; client_secret: string }>('POST', '/admin/clients', { customerId: a.customerId, family: 'fhir' });
  const token = await server.token(extra.client_id, extra.client_secret);
  const live = subscribe(server.url, token, RECORD, { patient, since: '0' });
  await live.waitFor(() => true);
  await server.admin('POST', `/admin/clients/${extra.client_id}/revoke`);
  await put(a, observation('o-after-client-revoke', 'Patient/pa'));
  expect(JSON.stringify(await live.ended())).toMatch(/revoked/);
  await live.close();
});

test('an HTTP POST of a subscription is told to use the WebSocket', async () => {
  const res = await fetch(`${server.url}/graphql`, {
    method: 'POST',
    headers: { authorization: `Bearer ${a.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ query: RECORD, variables: { patient } }),
  });
  expect(JSON.stringify(await res.json())).toMatch(/WebSocket|subscription/i);
});
