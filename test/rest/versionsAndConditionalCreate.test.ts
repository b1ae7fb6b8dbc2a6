import { startTestServer, type TestServer } from '../support/testServer';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(() => server.close());

describe('STU3 endpoints validate against STU3', () => {
  test('an STU3 shape is accepted on an STU3 endpoint and refused on an R4 one', async () => {
    const stu3 = await server.provision({ fhirVersion: 'STU3' });
    const r4 = await server.provision({ fhirVersion: 'R4' });
    // STU3 Condition: clinicalStatus is a code and assertedDate exists; both are invalid in R4.
    const condition = { resourceType: 'Condition', clinicalStatus: 'active', assertedDate: '2020-01-01', subject: { reference: 'Patient/p1' } };
    const ok = await stu3.fetch('Condition', { method: 'POST', body: JSON.stringify(condition) });
    expect(ok.status).toBe(201);
    const refused = await r4.fetch('Condition', { method: 'POST', body: JSON.stringify(condition) });
    expect(refused.status).toBe(400);
    const outcome = (await refused.json()) as { issue: { expression?: string[] }[] };
    expect(outcome.issue.flatMap((i) => i.expression ?? [])).toEqual(expect.arrayContaining(['Condition.assertedDate']));
  });

  test('an STU3 endpoint reports fhirVersion 3.0.2 and knows no R4-only types', async () => {
    const stu3 = await server.provision({ fhirVersion: 'STU3' });
    const metadata = (await (await stu3.fetch('metadata')).json()) as { fhirVersion: string };
    expect(metadata.fhirVersion).toBe('3.0.2');
    const r4Only = await stu3.fetch('MedicationKnowledge', { method: 'POST', body: JSON.stringify({ resourceType: 'MedicationKnowledge' }) });
    expect(r4Only.status).toBe(404);
  });
});

describe('conditional create (If-None-Exist)', () => {
  const body = { resourceType: 'Patient', identifier: [{ system: 'https://fhir.nhs.uk/Id/nhs-number', value: '9000000009' }] };

  test('creates once, then returns the existing resource with 200', async () => {
    const tenant = await server.provision();
    const criteria = 'identifier=https://fhir.nhs.uk/Id/nhs-number|9000000009';
    const first = await tenant.fetch('Patient', { method: 'POST', body: JSON.stringify(body), headers: { 'if-none-exist': criteria } });
    expect(first.status).toBe(201);
    const { id } = (await first.json()) as { id: string };
    const second = await tenant.fetch('Patient', { method: 'POST', body: JSON.stringify(body), headers: { 'if-none-exist': criteria } });
    expect(second.status).toBe(200);
    expect(((await second.json()) as { id: string }).id).toBe(id);
  });

  test('several matches are 412', async () => {
    const tenant = await server.provision();
    for (let i = 0; i < 2; i++) await tenant.fetch('Patient', { method: 'POST', body: JSON.stringify(body) });
    const res = await tenant.fetch('Patient', {
      method: 'POST',
      body: JSON.stringify(body),
      headers: { 'if-none-exist': 'identifier=https://fhir.nhs.uk/Id/nhs-number|9000000009' },
    });
    expect(res.status).toBe(412);
  });

  test("another endpoint's resources never match", async () => {
    const a = await server.provision();
    const b = await server.provision();
    await a.fetch('Patient', { method: 'POST', body: JSON.stringify(body) });
    const res = await b.fetch('Patient', {
      method: 'POST',
      body: JSON.stringify(body),
      headers: { 'if-none-exist': 'identifier=https://fhir.nhs.uk/Id/nhs-number|9000000009' },
    });
    expect(res.status).toBe(201);
  });
});
