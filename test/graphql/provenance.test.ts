import { gql } from '@apollo/client/core';
import { startTestServer, type Tenant, type TestServer } from '../support/testServer';
import { graphqlClient } from './client';

/**
 * Issue 12 (6): the aggregation view of a patient two customers share (same NHS number) shows each caller
 * only its own members; the other customer's are counted as other sources, never named, and the element
 * provenance does not name them either.
 */
type Json = Record<string, any>;
const NHS = 'https://fhir.nhs.uk/Id/nhs-number';
let server: TestServer;
let a: Tenant;
let b: Tenant;
let patientId: string;

async function put(t: Tenant, resource: Json) {
  const res = await t.fetch(`${resource.resourceType}/${resource.id}`, { method: 'PUT', body: JSON.stringify(resource) });
  if (res.status >= 300) throw new Error(await res.text());
}

// Only the fields the view had before the fix, so this shows the leak on that code too.
const MEMBERS = gql`
  query ($id: ID!) {
    aggregation(resourceType: "Patient", id: $id) {
      members {
        endpoint
        customer
        upstreamId
      }
      elementSources {
        element
        endpoint
        upstreamId
      }
    }
  }
`;
const VIEW = gql`
  query ($id: ID!) {
    aggregation(resourceType: "Patient", id: $id) {
      rule
      members {
        endpoint
        customer
        upstreamId
      }
      otherSources
      elementSources {
        element
        endpoint
        upstreamId
      }
    }
  }
`;

beforeAll(async () => {
  server = await startTestServer();
  a = await server.provision({ name: 'Trust A', defaultSourceOrg: 'Organization/orgA' });
  b = await server.provision({ name: 'Trust B', defaultSourceOrg: 'Organization/orgB' });
  await put(a, { resourceType: 'Organization', id: 'orgA', identifier: [{ system: 'ods', value: 'AAA' }], name: 'Trust A' });
  await put(a, { resourceType: 'Patient', id: 'pa', identifier: [{ system: NHS, value: '9449305552' }], name: [{ family: 'Smith' }], gender: 'female' });
  await put(a, { resourceType: 'Observation', id: 'oa', status: 'final', code: { text: 'weight' }, subject: { reference: 'Patient/pa' } });
  // B writes later, so B's Patient is the most recent member and supplies the single-valued elements.
  await new Promise((r) => setTimeout(r, 20));
  await put(b, { resourceType: 'Organization', id: 'orgB', identifier: [{ system: 'ods', value: 'BBB' }], name: 'Trust B' });
  await put(b, {
    resourceType: 'Patient',
    id: 'pb-secret',
    identifier: [{ system: NHS, value: '9449305552' }],
    name: [{ family: 'Smith' }],
    gender: 'female',
    birthDate: '1970-01-02',
  });
  await put(b, { resourceType: 'Observation', id: 'ob', status: 'final', code: { text: 'height' }, subject: { reference: 'Patient/pb-secret' } });
  await server.waitForAggregation();
  const found = (await (await server.aggregated(a, `Patient?identifier=${NHS}|9449305552`)).json()) as Json;
  patientId = found.entry[0].resource.id;
}, 120_000);
afterAll(() => server.close());

test.each([
  ['A', () => a, () => b, 'pb-secret'],
  ['B', () => b, () => a, 'pa'],
])('customer %s is not told who else holds data on the patient', async (_name, me, them, theirs) => {
  const { data, errors } = await graphqlClient(server.url, me().token).query(MEMBERS, { id: patientId });
  expect(errors).toBeUndefined();
  expect(data.aggregation.members).toHaveLength(1);
  const text = JSON.stringify(data);
  for (const secret of [them().endpointId, them().customerId, theirs]) expect(text).not.toContain(secret);
});

test.each([
  ['A', () => a, () => b, 'pa', 'pb-secret'],
  ['B', () => b, () => a, 'pb-secret', 'pa'],
])('customer %s sees its own member and only a count of the other', async (_name, me, them, mine, theirs) => {
  const { data, errors, ...rest } = await graphqlClient(server.url, me().token).query(VIEW, { id: patientId });
  expect(errors).toBeUndefined();
  expect(data.aggregation.rule).toBe('grouped by identifier');
  expect(data.aggregation.members).toEqual([{ endpoint: me().endpointId, customer: me().customerId, upstreamId: mine }]);
  expect(data.aggregation.otherSources).toBe(1);
  // Elements the other customer supplied are attributed to no endpoint and no upstream id.
  const sources = data.aggregation.elementSources as Json[];
  expect(sources.length).toBeGreaterThan(0);
  for (const s of sources)
    expect([JSON.stringify({ endpoint: me().endpointId, upstreamId: mine }), JSON.stringify({ endpoint: null, upstreamId: null })]).toContain(
      JSON.stringify({ endpoint: s.endpoint, upstreamId: s.upstreamId }),
    );
  const text = JSON.stringify({ data, rest });
  for (const secret of [them().endpointId, them().customerId, theirs]) expect(text).not.toContain(secret);
});

test('the most recent member supplies birthDate: for A that is another source, for B its own Patient', async () => {
  const view = async (t: Tenant) => (await graphqlClient(server.url, t.token).query(VIEW, { id: patientId })).data.aggregation.elementSources as Json[];
  expect((await view(a)).find((s) => s.element === 'birthDate')).toEqual({ element: 'birthDate', endpoint: null, upstreamId: null });
  expect((await view(b)).find((s) => s.element === 'birthDate')).toEqual({ element: 'birthDate', endpoint: b.endpointId, upstreamId: 'pb-secret' });
});

test('a customer that cannot see the patient gets no view at all', async () => {
  const c = await server.provision({ name: 'Trust C' });
  const { data, errors } = await graphqlClient(server.url, c.token).query(VIEW, { id: patientId });
  expect(data?.aggregation ?? null).toBeNull();
  expect(errors?.[0].extensions).toMatchObject({ status: 404 });
});
