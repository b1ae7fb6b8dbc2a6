import { startTestServer, type Tenant, type TestServer } from '../support/testServer';

/**
 * Search correctness on a fixed data set with known answers, through the real HTTP server.
 * Each expectation names exactly which resources must match.
 */
let server: TestServer;
let t: Tenant;

const LOINC = 'http://loinc.org';
const UCUM = 'http://unitsofmeasure.org';
const NHS = 'https://fhir.nhs.uk/Id/nhs-number';

const fixtures: Record<string, unknown>[] = [
  { resourceType: 'Practitioner', id: 'dr1', name: [{ family: 'Okafor', given: ['Ada'] }] },
  { resourceType: 'Practitioner', id: 'dr2', name: [{ family: 'Lee', given: ['Sam'] }] },
  {
    resourceType: 'Patient',
    id: 'p1',
    gender: 'male',
    birthDate: '1970-05-01',
    active: true,
    identifier: [{ system: NHS, value: '9000000001' }],
    name: [{ family: 'Smith', given: ['John'] }],
    address: [{ city: 'Leeds' }],
    generalPractitioner: [{ reference: 'Practitioner/dr1' }],
    meta: { tag: [{ system: 'urn:tags', code: 'vip' }] },
  },
  {
    resourceType: 'Patient',
    id: 'p2',
    gender: 'female',
    birthDate: '1985-11-20',
    identifier: [{ system: NHS, value: '9000000002' }],
    name: [{ family: 'Smithson', given: ['Jane'] }],
    address: [{ city: 'York' }],
    generalPractitioner: [{ reference: 'Practitioner/dr2' }],
  },
  { resourceType: 'Patient', id: 'p3', gender: 'female', name: [{ family: 'Zoë', given: ['Ann'] }], address: [{ city: 'Leeds' }] },
  { resourceType: 'Patient', id: 'p4', gender: 'other', birthDate: '2001', name: [{ family: 'Brown' }] },
  {
    resourceType: 'Observation',
    id: 'o1',
    status: 'final',
    subject: { reference: 'Patient/p1' },
    code: { coding: [{ system: LOINC, code: '29463-7', display: 'Body weight' }], text: 'Weight' },
    valueQuantity: { value: 80, unit: 'kg', system: UCUM, code: 'kg' },
    effectiveDateTime: '2024-03-10T09:30:00Z',
  },
  {
    resourceType: 'Observation',
    id: 'o2',
    status: 'final',
    subject: { reference: 'Patient/p1' },
    code: { coding: [{ system: LOINC, code: '29463-7' }] },
    valueQuantity: { value: 65.5, unit: 'kg', system: UCUM, code: 'kg' },
    effectivePeriod: { start: '2023-01-01', end: '2023-01-31' },
  },
  {
    resourceType: 'Observation',
    id: 'o3',
    status: 'preliminary',
    subject: { reference: 'Patient/p2' },
    code: { coding: [{ system: LOINC, code: '8302-2', display: 'Body height' }] },
    valueQuantity: { value: 170, unit: 'cm', system: UCUM, code: 'cm' },
    effectiveDateTime: '2024-03-11',
  },
  { resourceType: 'RiskAssessment', id: 'ra1', status: 'final', subject: { reference: 'Patient/p1' }, prediction: [{ probabilityDecimal: 0.25 }] },
  { resourceType: 'RiskAssessment', id: 'ra2', status: 'final', subject: { reference: 'Patient/p2' }, prediction: [{ probabilityDecimal: 0.8 }] },
  { resourceType: 'ValueSet', id: 'vs1', status: 'active', url: 'http://example.org/fhir/ValueSet/colours' },
  { resourceType: 'ValueSet', id: 'vs2', status: 'active', url: 'http://example.org/fhir/ValueSet/colours/warm' },
  { resourceType: 'ValueSet', id: 'vs3', status: 'active', url: 'http://other.org/ValueSet/x' },
];

beforeAll(async () => {
  server = await startTestServer();
  t = await server.provision();
  for (const r of fixtures) {
    const res = await t.fetch(`${r.resourceType}/${r.id}`, { method: 'PUT', body: JSON.stringify(r) });
    if (res.status !== 201) throw new Error(`fixture ${r.id}: ${res.status} ${await res.text()}`);
  }
}, 120_000);
afterAll(() => server.close());

interface SearchBundle {
  total?: number;
  link: { relation: string; url: string }[];
  entry?: { fullUrl: string; resource: Record<string, any>; search: { mode: string } }[];
}

async function search(query: string, headers: Record<string, string> = {}): Promise<SearchBundle> {
  const res = await t.fetch(query, { headers });
  const body = await res.json();
  if (res.status !== 200) throw new Error(`${query} → ${res.status} ${JSON.stringify(body)}`);
  return body as SearchBundle;
}

async function ids(query: string): Promise<string[]> {
  const bundle = await search(query);
  return (bundle.entry ?? [])
    .filter((e) => e.search.mode === 'match')
    .map((e) => e.resource.id)
    .sort();
}

describe('parameter types', () => {
  test.each([
    ['Patient?gender=female', ['p2', 'p3']],
    ['Patient?gender=female,other', ['p2', 'p3', 'p4']],
    ['Patient?gender:not=female', ['p1', 'p4']],
    [`Patient?identifier=${NHS}|9000000002`, ['p2']],
    ['Patient?identifier=9000000001', ['p1']],
    [`Patient?identifier=${NHS}|`, ['p1', 'p2']],
    ['Patient?active=true', ['p1']],
    ['Patient?_tag=urn:tags|vip', ['p1']],
    ['Observation?code=http://loinc.org|29463-7', ['o1', 'o2']],
    ['Observation?code:text=body', ['o1', 'o3']],
    ['Observation?code:text=weight', ['o1']],
  ])('token %s', async (q, expected) => expect(await ids(q)).toEqual(expected));

  test.each([
    ['Patient?name=smith', ['p1', 'p2']],
    ['Patient?family=SMITHS', ['p2']],
    ['Patient?name:exact=Smith', ['p1']],
    ['Patient?name:contains=mit', ['p1', 'p2']],
    ['Patient?name=zoe', ['p3']],
    ['Patient?address-city=leeds', ['p1', 'p3']],
    ['Patient?name=smith&address-city=york', ['p2']],
  ])('string %s', async (q, expected) => expect(await ids(q)).toEqual(expected));

  test.each([
    ['Patient?birthdate=1970', ['p1']],
    ['Patient?birthdate=1970-05', ['p1']],
    ['Patient?birthdate=1970-05-02', []],
    ['Patient?birthdate=ge1985-01-01', ['p2', 'p4']],
    ['Patient?birthdate=lt1985-11-20', ['p1']],
    ['Patient?birthdate=le1985-11-20', ['p1', 'p2']],
    ['Patient?birthdate=gt2001-06-01', ['p4']], // 2001 means the whole year, which extends past June
    ['Patient?birthdate=gt2001', []],
    ['Patient?birthdate=ne1970', ['p2', 'p4']],
    ['Patient?birthdate=ge1980&birthdate=lt2000', ['p2']],
    ['Patient?birthdate=sa1999', ['p4']],
    ['Patient?birthdate=eb1971', ['p1']],
    ['Observation?date=2024-03', ['o1', 'o3']],
    ['Observation?date=2023-01-15', []],
    ['Observation?date=2023-01', ['o2']],
    ['Observation?date=ge2023-01-20&date=le2023-02-01', ['o2']],
  ])('date %s', async (q, expected) => expect(await ids(q)).toEqual(expected));

  test.each([
    ['RiskAssessment?probability=0.25', ['ra1']],
    ['RiskAssessment?probability=gt0.5', ['ra2']],
    ['RiskAssessment?probability=le0.25', ['ra1']],
  ])('number %s', async (q, expected) => expect(await ids(q)).toEqual(expected));

  test.each([
    ['Observation?value-quantity=80', ['o1']],
    ['Observation?value-quantity=gt70|http://unitsofmeasure.org|kg', ['o1']],
    ['Observation?value-quantity=lt100||kg', ['o1', 'o2']],
    ['Observation?value-quantity=ap65', ['o2']],
  ])('quantity %s', async (q, expected) => expect(await ids(q)).toEqual(expected));

  test.each([
    ['Observation?subject=Patient/p1', ['o1', 'o2']],
    ['Observation?subject:Patient=p2', ['o3']],
    ['Observation?patient=p1', ['o1', 'o2']],
    ['Patient?general-practitioner=Practitioner/dr2', ['p2']],
  ])('reference %s', async (q, expected) => expect(await ids(q)).toEqual(expected));

  test.each([
    ['ValueSet?url=http://example.org/fhir/ValueSet/colours', ['vs1']],
    ['ValueSet?url:below=http://example.org/fhir', ['vs1', 'vs2']],
    ['ValueSet?url:above=http://example.org/fhir/ValueSet/colours/warm/extra', ['vs1', 'vs2']],
  ])('uri %s', async (q, expected) => expect(await ids(q)).toEqual(expected));

  test.each([
    ['Observation?code-value-quantity=http://loinc.org|29463-7$gt70', ['o1']],
    ['Observation?code-value-quantity=http://loinc.org|29463-7$lt70', ['o2']],
    ['Observation?code-value-quantity=http://loinc.org|8302-2$gt70', ['o3']],
  ])('composite %s', async (q, expected) => expect(await ids(q)).toEqual(expected));

  test.each([
    ['Patient?birthdate:missing=true', ['p3']],
    ['Patient?birthdate:missing=false', ['p1', 'p2', 'p4']],
    ['Patient?_id=p1,p3', ['p1', 'p3']],
  ])('missing and _id %s', async (q, expected) => expect(await ids(q)).toEqual(expected));
});

describe('chains and reverse chains', () => {
  test.each([
    ['Observation?subject:Patient.name=smith', ['o1', 'o2', 'o3']],
    ['Observation?subject:Patient.gender=female', ['o3']],
    ['Observation?patient.identifier=9000000001', ['o1', 'o2']],
    ['Observation?subject:Patient.general-practitioner.name=okafor', ['o1', 'o2']],
    ['Patient?_has:Observation:patient:code=8302-2', ['p2']],
    ['Patient?_has:Observation:subject:status=final', ['p1']],
    ['Practitioner?_has:Patient:general-practitioner:_has:Observation:patient:code=8302-2', ['dr2']],
  ])('%s', async (q, expected) => expect(await ids(q)).toEqual(expected));
});

describe('parameters defined as unions of others (combo-*) match what either part matches', () => {
  let own: Tenant;
  const bp = {
    resourceType: 'Observation',
    id: 'bp',
    status: 'final',
    subject: { reference: 'Patient/q1' },
    code: { coding: [{ system: LOINC, code: '85354-9', display: 'Blood pressure panel' }] },
    component: [
      { code: { coding: [{ system: LOINC, code: '8480-6' }] }, valueQuantity: { value: 120, unit: 'mmHg', system: UCUM, code: 'mm[Hg]' } },
      { code: { coding: [{ system: LOINC, code: '8462-4' }] }, valueQuantity: { value: 80, unit: 'mmHg', system: UCUM, code: 'mm[Hg]' } },
    ],
  };
  const hr = {
    resourceType: 'Observation',
    id: 'hr',
    status: 'final',
    subject: { reference: 'Patient/q1' },
    code: { coding: [{ system: LOINC, code: '8867-4' }] },
    valueQuantity: { value: 150, unit: '/min', system: UCUM, code: '/min' },
  };
  const smoker = {
    resourceType: 'Observation',
    id: 'smoker',
    status: 'final',
    code: { coding: [{ system: LOINC, code: '72166-2' }] },
    valueCodeableConcept: { coding: [{ system: 'http://snomed.info/sct', code: '8517006' }] },
  };
  beforeAll(async () => {
    own = await server.provision();
    for (const r of [bp, hr, smoker]) expect((await own.fetch(`Observation/${r.id}`, { method: 'PUT', body: JSON.stringify(r) })).status).toBe(201);
  });
  const matching = async (query: string) => {
    const res = await own.fetch(query);
    const body = (await res.json()) as SearchBundle;
    if (res.status !== 200) throw new Error(`${query} → ${res.status} ${JSON.stringify(body)}`);
    return (body.entry ?? []).filter((e) => e.search.mode === 'match').map((e) => e.resource.id);
  };
  test.each([
    [`Observation?combo-code=${LOINC}|8480-6`, ['bp']],
    [`Observation?combo-code=${LOINC}|85354-9,${LOINC}|8867-4`, ['bp', 'hr']],
    ['Observation?combo-value-quantity=gt100', ['bp', 'hr']],
    ['Observation?combo-value-quantity=lt100', ['bp']],
    [`Observation?combo-code-value-quantity=${LOINC}|8480-6$gt100`, ['bp']],
    [`Observation?combo-code-value-quantity=${LOINC}|8867-4$gt100`, ['hr']],
    [`Observation?combo-code-value-quantity=${LOINC}|8462-4$gt100`, []],
    ['Observation?combo-value-concept=8517006', ['smoker']],
    ['Observation?combo-value-concept:missing=true', ['bp', 'hr']],
    ['Observation?combo-value-quantity:missing=true', ['smoker']],
  ])('%s', async (q, expected) => expect((await matching(q)).sort()).toEqual(expected));

  test('_sort by a combo parameter orders by the lowest value of either part', async () => {
    expect(await matching('Observation?_sort=combo-code')).toEqual(['smoker', 'bp', 'hr']);
  });
});

describe('include, revinclude, sort, summary, total', () => {
  test('_include brings the referenced patients in as includes', async () => {
    const bundle = await search('Observation?code=29463-7&_include=Observation:subject');
    const modes = (bundle.entry ?? []).map((e) => `${e.search.mode}:${e.resource.resourceType}/${e.resource.id}`).sort();
    expect(modes).toEqual(['include:Patient/p1', 'match:Observation/o1', 'match:Observation/o2']);
  });

  test('_revinclude and :iterate', async () => {
    const bundle = await search('Patient?_id=p2&_revinclude=Observation:subject&_include:iterate=Patient:general-practitioner&_revinclude=RiskAssessment:subject');
    const got = (bundle.entry ?? []).map((e) => `${e.search.mode}:${e.resource.resourceType}/${e.resource.id}`).sort();
    expect(got).toEqual(['include:Observation/o3', 'include:Practitioner/dr2', 'include:RiskAssessment/ra2', 'match:Patient/p2']);
  });

  test('_include=* follows every reference parameter', async () => {
    const bundle = await search('Patient?_id=p1&_include=*');
    const got = (bundle.entry ?? []).filter((e) => e.search.mode === 'include').map((e) => e.resource.id);
    expect(got).toEqual(['dr1']);
  });

  test('_sort on several keys, descending with -', async () => {
    const bundle = await search('Patient?_sort=-gender,birthdate');
    expect((bundle.entry ?? []).map((e) => e.resource.id)).toEqual(['p4', 'p1', 'p2', 'p3']);
    const byDate = await search('Patient?_sort=-birthdate');
    expect((byDate.entry ?? []).map((e) => e.resource.id)).toEqual(['p4', 'p2', 'p1', 'p3']);
  });

  test('_total=accurate counts every match; _summary=count returns only the count', async () => {
    expect((await search('Patient?_total=accurate&_count=1')).total).toBe(4);
    const counted = await search('Patient?gender=female&_summary=count');
    expect(counted.total).toBe(2);
    expect(counted.entry ?? []).toEqual([]);
    expect((await search('Patient?_total=estimate')).total).toEqual(expect.any(Number));
  });

  test('_elements and _summary project the resource and mark it SUBSETTED', async () => {
    const bundle = await search('Patient?_id=p1&_elements=gender');
    const p = bundle.entry![0].resource;
    expect(p.gender).toBe('male');
    expect(p.name).toBeUndefined();
    expect(p.meta.tag).toEqual(expect.arrayContaining([expect.objectContaining({ code: 'SUBSETTED' })]));
    const summary = (await search('Patient?_id=p1&_summary=true')).entry![0].resource;
    expect(summary.name).toBeDefined();
    expect(summary.address).toBeDefined();
    expect(summary.generalPractitioner).toBeUndefined();
  });
});

describe('paging', () => {
  test('following next links visits every match once, and previous goes back', async () => {
    const seen: string[] = [];
    let bundle = await search('Patient?_count=1');
    const firstPage = bundle.entry!.map((e) => e.resource.id);
    for (;;) {
      seen.push(...(bundle.entry ?? []).map((e) => e.resource.id));
      const next = bundle.link.find((l) => l.relation === 'next');
      if (!next) break;
      bundle = await search(next.url);
      if (seen.length === 1) {
        const previous = bundle.link.find((l) => l.relation === 'previous');
        expect(previous).toBeDefined();
        expect((await search(previous!.url)).entry!.map((e) => e.resource.id)).toEqual(firstPage);
      }
    }
    expect(seen.sort()).toEqual(['p1', 'p2', 'p3', 'p4']);
  });

  test('a cursor stays correct when data changes between pages', async () => {
    const page1 = await search('Observation?_count=2');
    await t.fetch('Observation/o-new', {
      method: 'PUT',
      body: JSON.stringify({ resourceType: 'Observation', id: 'o-new', status: 'final', code: { text: 'x' } }),
    });
    const page2 = await search(page1.link.find((l) => l.relation === 'next')!.url);
    const all = [...page1.entry!, ...page2.entry!].map((e) => e.resource.id);
    expect(new Set(all).size).toBe(all.length);
    expect(all).toEqual(expect.arrayContaining(['o1', 'o2', 'o3', 'o-new']));
    await t.fetch('Observation/o-new', { method: 'DELETE' });
  });
});

describe('errors and handling', () => {
  test('unknown parameters are ignored under lenient handling, with a warning, and refused under strict', async () => {
    const bundle = await search('Patient?gender=male&nonsense=1');
    expect(bundle.entry!.filter((e) => e.search.mode === 'match').map((e) => e.resource.id)).toEqual(['p1']);
    const outcome = bundle.entry!.find((e) => e.search.mode === 'outcome');
    expect(JSON.stringify(outcome)).toContain('nonsense');
    expect(bundle.link[0].url).not.toContain('nonsense');
    const strict = await t.fetch('Patient?nonsense=1', { headers: { prefer: 'handling=strict' } });
    expect(strict.status).toBe(400);
  });

  test.each([
    ['Patient?birthdate=1970-13-01', 'birthdate'],
    ['Patient?birthdate=xx1970', 'birthdate'],
    ['RiskAssessment?probability=abc', 'probability'],
    ['Patient?_count=many', '_count'],
    ['Patient?name:frobnicate=x', 'name'],
  ])('%s is 400 naming %s', async (q, name) => {
    const res = await t.fetch(q);
    expect(res.status).toBe(400);
    expect(JSON.stringify(await res.json())).toContain(name);
  });

  test('POST _search with a form body searches like GET', async () => {
    const res = await t.fetch('Patient/_search', { method: 'POST', body: 'gender=female', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    expect(res.status).toBe(200);
    const bundle = (await res.json()) as SearchBundle;
    expect(bundle.entry!.map((e) => e.resource.id).sort()).toEqual(['p2', 'p3']);
  });

  test('old versions and deleted resources are not found', async () => {
    await t.fetch('Patient/tmp', { method: 'PUT', body: JSON.stringify({ resourceType: 'Patient', id: 'tmp', name: [{ family: 'Before' }] }) });
    await t.fetch('Patient/tmp', { method: 'PUT', body: JSON.stringify({ resourceType: 'Patient', id: 'tmp', name: [{ family: 'After' }] }) });
    expect(await ids('Patient?name=before')).toEqual([]);
    expect(await ids('Patient?name=after')).toEqual(['tmp']);
    await t.fetch('Patient/tmp', { method: 'DELETE' });
    expect(await ids('Patient?name=after')).toEqual([]);
  });
});

describe('conditional interactions on full search', () => {
  test('conditional update by identifier updates the one match, creates when none, 412 on several', async () => {
    const up = await t.fetch(`Patient?identifier=${NHS}|9000000002`, {
      method: 'PUT',
      body: JSON.stringify({
        resourceType: 'Patient',
        identifier: [{ system: NHS, value: '9000000002' }],
        gender: 'female',
        birthDate: '1985-11-20',
        name: [{ family: 'Smithson' }],
      }),
    });
    expect(up.status).toBe(200);
    expect(((await up.json()) as { id: string }).id).toBe('p2');
    const created = await t.fetch(`Patient?identifier=${NHS}|9999`, {
      method: 'PUT',
      body: JSON.stringify({ resourceType: 'Patient', identifier: [{ system: NHS, value: '9999' }] }),
    });
    expect(created.status).toBe(201);
    const several = await t.fetch('Patient?gender=female', { method: 'PUT', body: JSON.stringify({ resourceType: 'Patient' }) });
    expect(several.status).toBe(412);
  });

  test('conditional create on a non-identifier parameter, and conditional delete', async () => {
    const again = await t.fetch('Observation', {
      method: 'POST',
      body: JSON.stringify({ resourceType: 'Observation', status: 'final', code: { text: 'x' } }),
      headers: { 'if-none-exist': 'code=8302-2&subject=Patient/p2' },
    });
    expect(again.status).toBe(200);
    const del = await t.fetch(`Patient?identifier=${NHS}|9999`, { method: 'DELETE' });
    expect([200, 204]).toContain(del.status);
    expect(await ids(`Patient?identifier=${NHS}|9999`)).toEqual([]);
  });
});
