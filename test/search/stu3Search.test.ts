import { startTestServer, type Tenant, type TestServer } from '../support/testServer';

/** STU3 endpoints search with the STU3 (3.0.2) search parameters, indexed on STU3 paths (issue 15 item 3). */
let server: TestServer;
let stu3: Tenant;
let r4: Tenant;

beforeAll(async () => {
  server = await startTestServer();
  stu3 = await server.provision({ fhirVersion: 'STU3' });
  r4 = await server.provision({ fhirVersion: 'R4' });
});
afterAll(() => server.close());

const strict = { headers: { prefer: 'handling=strict' } };
const ids = async (res: Response) => {
  expect(res.status).toBe(200);
  const bundle = (await res.json()) as { entry?: { resource: { id: string } }[] };
  return (bundle.entry ?? []).map((e) => e.resource.id).sort();
};
const create = async (tenant: Tenant, resource: Record<string, unknown>) => {
  const res = await tenant.fetch(resource.resourceType as string, { method: 'POST', body: JSON.stringify(resource) });
  expect(res.status).toBe(201);
  return ((await res.json()) as { id: string }).id;
};

describe('an STU3 endpoint searches with STU3 parameters', () => {
  let condition: string;
  beforeAll(async () => {
    condition = await create(stu3, {
      resourceType: 'Condition',
      clinicalStatus: 'active',
      assertedDate: '2020-03-04',
      subject: { reference: 'Patient/p1' },
      context: { reference: 'Encounter/e1' },
    });
    await create(stu3, { resourceType: 'Condition', clinicalStatus: 'resolved', assertedDate: '2019-01-01', subject: { reference: 'Patient/p2' } });
  });

  test('Condition?asserted-date finds the condition by its STU3 assertedDate', async () => {
    expect(await ids(await stu3.fetch('Condition?asserted-date=2020-03-04', strict))).toEqual([condition]);
    expect(await ids(await stu3.fetch('Condition?asserted-date=gt2020-01-01', strict))).toEqual([condition]);
  });

  test('Condition?context and ?encounter follow STU3 Condition.context', async () => {
    expect(await ids(await stu3.fetch('Condition?context=Encounter/e1', strict))).toEqual([condition]);
    expect(await ids(await stu3.fetch('Condition?encounter=Encounter/e1', strict))).toEqual([condition]);
  });

  test('STU3 token parameters index STU3 shapes: clinical-status is a code', async () => {
    expect(await ids(await stu3.fetch('Condition?clinical-status=active', strict))).toEqual([condition]);
  });

  test('STU3-only parameters of other types work: Immunization?notgiven, MedicationStatement?context', async () => {
    const notGiven = await create(stu3, {
      resourceType: 'Immunization',
      status: 'completed',
      notGiven: true,
      vaccineCode: { coding: [{ system: 'http://hl7.org/fhir/sid/cvx', code: '140' }] },
      patient: { reference: 'Patient/p1' },
      primarySource: true,
    });
    await create(stu3, {
      resourceType: 'Immunization',
      status: 'completed',
      notGiven: false,
      vaccineCode: { coding: [{ system: 'http://hl7.org/fhir/sid/cvx', code: '140' }] },
      patient: { reference: 'Patient/p1' },
      primarySource: true,
    });
    expect(await ids(await stu3.fetch('Immunization?notgiven=true', strict))).toEqual([notGiven]);
    const statement = await create(stu3, {
      resourceType: 'MedicationStatement',
      status: 'active',
      taken: 'y',
      medicationCodeableConcept: { text: 'aspirin' },
      subject: { reference: 'Patient/p1' },
      context: { reference: 'Encounter/e1' },
    });
    expect(await ids(await stu3.fetch('MedicationStatement?context=Encounter/e1', strict))).toEqual([statement]);
  });

  test('R4-only parameters are unknown on an STU3 endpoint: refused under handling=strict', async () => {
    for (const query of ['Condition?recorded-date=2020-03-04', 'MedicationStatement?encounter=Encounter/e1', 'Patient?_source=http://x']) {
      const res = await stu3.fetch(query, strict);
      expect(res.status).toBe(400);
      const outcome = (await res.json()) as { issue: { diagnostics?: string }[] };
      expect(JSON.stringify(outcome)).toContain(query.split('?')[1].split('=')[0]);
    }
  });

  test('STU3-only parameters are unknown on an R4 endpoint: refused under handling=strict', async () => {
    expect((await r4.fetch('Condition?asserted-date=2020-03-04', strict)).status).toBe(400);
    expect((await r4.fetch('Condition?context=Encounter/e1', strict)).status).toBe(400);
  });

  test('composite parameters work on STU3 (components as R4 defines them): Observation?code-value-quantity', async () => {
    const high = await create(stu3, {
      resourceType: 'Observation',
      status: 'final',
      code: { coding: [{ system: 'http://loinc.org', code: '8480-6' }] },
      subject: { reference: 'Patient/p1' },
      valueQuantity: { value: 150, unit: 'mmHg', system: 'http://unitsofmeasure.org', code: 'mm[Hg]' },
    });
    await create(stu3, {
      resourceType: 'Observation',
      status: 'final',
      code: { coding: [{ system: 'http://loinc.org', code: '8480-6' }] },
      subject: { reference: 'Patient/p1' },
      valueQuantity: { value: 110, unit: 'mmHg', system: 'http://unitsofmeasure.org', code: 'mm[Hg]' },
    });
    expect(await ids(await stu3.fetch('Observation?code-value-quantity=http://loinc.org|8480-6$gt140', strict))).toEqual([high]);
    expect(await ids(await stu3.fetch('Observation?combo-code=http://loinc.org|8480-6&value-quantity=gt140', strict))).toEqual([high]);
  });

  test('chains use the target type’s STU3 parameters', async () => {
    const encounter = await create(stu3, { resourceType: 'Encounter', status: 'finished', class: { code: 'AMB' }, subject: { reference: 'Patient/p1' } });
    const withEncounter = await create(stu3, {
      resourceType: 'Condition',
      clinicalStatus: 'active',
      subject: { reference: 'Patient/p1' },
      context: { reference: `Encounter/${encounter}` },
    });
    expect(await ids(await stu3.fetch('Condition?context:Encounter.status=finished', strict))).toEqual([withEncounter]);
  });
});

describe('/metadata of an STU3 endpoint lists the STU3 parameters', () => {
  const paramsOf = async (tenant: Tenant, type: string) => {
    const statement = (await (await tenant.fetch('metadata')).json()) as { rest: { resource: { type: string; searchParam?: { name: string; type: string }[] }[] }[] };
    return (statement.rest[0].resource.find((r) => r.type === type)?.searchParam ?? []).map((p) => p.name);
  };

  test('Condition: asserted-date and context on STU3, recorded-date on R4', async () => {
    const stu3Params = await paramsOf(stu3, 'Condition');
    expect(stu3Params).toEqual(expect.arrayContaining(['asserted-date', 'context', 'encounter', 'clinical-status', '_id', '_lastUpdated', '_tag']));
    expect(stu3Params).not.toContain('recorded-date');
    expect(stu3Params).not.toContain('_source');
    const r4Params = await paramsOf(r4, 'Condition');
    expect(r4Params).toContain('recorded-date');
    expect(r4Params).not.toContain('asserted-date');
  });

  test('Immunization on STU3 offers notgiven and reason-not-given', async () => {
    expect(await paramsOf(stu3, 'Immunization')).toEqual(expect.arrayContaining(['notgiven', 'reason-not-given', 'date', 'practitioner']));
  });
});
