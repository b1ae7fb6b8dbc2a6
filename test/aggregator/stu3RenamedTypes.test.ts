import { startTestServer, type Tenant, type TestServer } from '../support/testServer';

/**
 * Issue 15 item 4: a STU3 ProcedureRequest is served on the aggregated endpoint as the R4 ServiceRequest HAPI
 * converts it to, under an aggregated id, and what refers to it (a Procedure's basedOn) refers to that
 * ServiceRequest. Through the real server: a STU3 customer endpoint in, the aggregated R4 endpoint out.
 */
const NHS = 'https://fhir.nhs.uk/Id/nhs-number';
const ODS = 'https://fhir.nhs.uk/Id/ods-organization-code';
type Json = Record<string, any>;
let server: TestServer;

async function put(t: Tenant, resource: Json): Promise<void> {
  const res = await t.fetch(`${resource.resourceType}/${resource.id}`, { method: 'PUT', body: JSON.stringify(resource) });
  if (res.status >= 300) throw new Error(`${resource.resourceType}/${resource.id}: ${res.status} ${await res.text()}`);
}
const matches = (bundle: Json) => (bundle.entry ?? []).filter((e: Json) => e.search?.mode === 'match').map((e: Json) => e.resource);
const agg = async (t: Tenant, path: string): Promise<Json> => (await server.aggregated(t, path)).json() as Promise<Json>;
const httpStatus = async (t: Tenant, path: string): Promise<number> => (await server.aggregated(t, path)).status;

beforeAll(async () => {
  server = await startTestServer();
}, 60_000);
afterAll(() => server.close());

test('a STU3 ProcedureRequest is aggregated as a ServiceRequest, and references to it follow', async () => {
  const t = await server.provision({ fhirVersion: 'STU3', defaultSourceOrg: 'Organization/trust' });
  await put(t, { resourceType: 'Organization', id: 'trust', identifier: [{ system: ODS, value: 'PR1' }] });
  await put(t, { resourceType: 'Patient', id: 'p', identifier: [{ system: NHS, value: '9000000101' }] });
  await put(t, {
    resourceType: 'ProcedureRequest',
    id: 'req',
    status: 'suspended',
    intent: 'order',
    code: { coding: [{ system: 'http://snomed.info/sct', code: '73761001' }], text: 'colonoscopy' },
    subject: { reference: 'Patient/p' },
    requester: { agent: { reference: 'Patient/p' } },
  });
  await put(t, {
    resourceType: 'Procedure',
    id: 'proc',
    status: 'completed',
    code: { text: 'colonoscopy done' },
    subject: { reference: 'Patient/p' },
    basedOn: [{ reference: 'ProcedureRequest/req' }],
  });
  await server.waitForAggregation();

  const [request] = matches(await agg(t, 'ServiceRequest?code=http://snomed.info/sct|73761001'));
  expect(request).toMatchObject({ resourceType: 'ServiceRequest', status: 'on-hold', intent: 'order' });
  expect(request.id).not.toBe('req');
  const [patient] = matches(await agg(t, `Patient?identifier=${NHS}|9000000101`));
  expect(request.subject.reference).toBe(`Patient/${patient.id}`);
  expect(request.requester.reference).toBe(`Patient/${patient.id}`);
  expect(await httpStatus(t, `ServiceRequest/${request.id}`)).toBe(200);

  const [procedure] = matches(await agg(t, 'Procedure?code:text=colonoscopy done'));
  expect(procedure.basedOn).toEqual([{ reference: `ServiceRequest/${request.id}` }]);
  const status = (await (await t.fetch('ProcedureRequest/req/$aggregation-status')).json()) as Json;
  expect(status.issue[0].diagnostics).toBe(`ProcedureRequest/req is aggregated as ServiceRequest/${request.id}`);

  // Deleted upstream: the ServiceRequest leaves the aggregated record, and the Procedure with it.
  expect((await t.fetch('ProcedureRequest/req', { method: 'DELETE' })).status).toBeLessThan(300);
  await server.waitForAggregation();
  expect(await httpStatus(t, `ServiceRequest/${request.id}`)).toBe(410);
  expect(matches(await agg(t, 'Procedure?code:text=colonoscopy done'))).toEqual([]);
});

test('a STU3 ReferralRequest has no R4 conversion (none in HAPI either): excluded with that reason, not served', async () => {
  const t = await server.provision({ fhirVersion: 'STU3', defaultSourceOrg: 'Organization/trust' });
  await put(t, { resourceType: 'Organization', id: 'trust', identifier: [{ system: ODS, value: 'PR2' }] });
  await put(t, { resourceType: 'Patient', id: 'p', identifier: [{ system: NHS, value: '9000000102' }] });
  await put(t, { resourceType: 'ReferralRequest', id: 'ref', status: 'active', intent: 'order', subject: { reference: 'Patient/p' } });
  await server.waitForAggregation();
  const status = (await (await t.fetch('ReferralRequest/ref/$aggregation-status')).json()) as Json;
  expect(status.issue[0].diagnostics).toMatch(/ReferralRequest\/ref is excluded from the aggregated record: ReferralRequest is not a type the aggregation supports/);
});
