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

const ODS = 'https://fhir.nhs.uk/Id/ods-organization-code';
const NHS = 'https://fhir.nhs.uk/Id/nhs-number';
const weight = (id: string, value: string, patient = 'Patient/dp') =>
  `{"resourceType":"Observation","id":"${id}","status":"final","code":{"text":"weight"},"subject":{"reference":"${patient}"},` +
  `"valueQuantity":{"value":${value},"unit":"kg","system":"http://unitsofmeasure.org","code":"kg"}}`;

describe('decimals through every door', () => {
  beforeAll(async () => {
    await r4.fetch('Organization/do', { method: 'PUT', body: JSON.stringify({ resourceType: 'Organization', id: 'do', identifier: [{ system: ODS, value: 'DEC' }] }) });
    await r4.fetch('Patient/dp', {
      method: 'PUT',
      body: JSON.stringify({ resourceType: 'Patient', id: 'dp', identifier: [{ system: NHS, value: '9000000009' }], managingOrganization: { reference: 'Organization/do' } }),
    });
  });

  test('a transaction Bundle, its response, history and vread keep 1.50', async () => {
    const bundle = `{"resourceType":"Bundle","type":"transaction","entry":[{"resource":${weight('w1', '1.50')},"request":{"method":"PUT","url":"Observation/w1"}}]}`;
    const res = await r4.fetch('', { method: 'POST', body: bundle, headers: { prefer: 'return=representation' } });
    expect(res.status).toBe(200);
    await r4.fetch('Observation/w1', { method: 'PUT', body: weight('w1', '12500.00') });
    const history = await (await r4.fetch('Observation/w1/_history')).text();
    expect(history).toMatch(/"value":12500\.00[,}]/);
    expect(history).toMatch(/"value":1\.50[,}]/);
    expect(await (await r4.fetch('Observation/w1/_history/1')).text()).toMatch(/"value":1\.50[,}]/);
  });

  test('search compares decimals numerically: 0.001530 is found by 0.00153 and by gt0.0015', async () => {
    await r4.fetch('Observation/w2', { method: 'PUT', body: weight('w2', '0.001530') });
    for (const q of ['value-quantity=0.00153', 'value-quantity=gt0.0015', 'value-quantity=lt0.0016']) {
      const bundle = await json(await r4.fetch(`Observation?${q}&_id=w2`));
      expect([q, bundle.entry?.length ?? 0]).toEqual([q, 1]);
      expect(stringifyFhirJson(bundle)).toMatch(/"value":0\.001530[,}]/);
    }
  });

  test('XML in, JSON out (and back): 1.50 stays 1.50', async () => {
    const xml = `<Observation xmlns="http://hl7.org/fhir"><id value="w3"/><status value="final"/><code><text value="weight"/></code><valueQuantity><value value="1.50"/></valueQuantity></Observation>`;
    expect((await r4.fetch('Observation/w3', { method: 'PUT', body: xml, headers: { 'content-type': 'application/fhir+xml' } })).status).toBe(201);
    expect(await (await r4.fetch('Observation/w3')).text()).toMatch(/"value":1\.50[,}]/);
    expect(await (await r4.fetch('Observation/w3', { headers: { accept: 'application/fhir+xml' } })).text()).toContain('<value value="1.50"/>');
  });

  test('$graphql gives the exact digits (Decimal scalar)', async () => {
    await r4.fetch('Observation/w4', { method: 'PUT', body: weight('w4', '1.0') });
    const query = '{ Observation(id: "w4") { valueQuantity { value } } }';
    const rest = await (await r4.fetch(`$graphql?query=${encodeURIComponent(query)}`)).text();
    expect(rest).toContain('"value":1.0}');
  });

  test('the aggregate keeps digits through copies and merges; STU3 bodies keep them too', async () => {
    await r4.fetch('Observation/w5', { method: 'PUT', body: weight('w5', '7.20') });
    const medication = (id: string, code: string) =>
      `{"resourceType":"Medication","id":"${id}","code":{"coding":[{"system":"http://snomed.info/sct","code":"${code}"}]},"ingredient":[{"itemCodeableConcept":{"text":"x"},"strength":{"numerator":{"value":2.50},"denominator":{"value":1.0}}}]}`;
    expect((await r4.fetch('Medication/m1', { method: 'PUT', body: medication('m1', '123') })).status).toBe(201);
    // STU3 input keeps its digits at the door (the STU3 Medication mapping itself, amount → strength, is issue 15 item 4).
    expect((await stu3.fetch('Medication/m2', { method: 'PUT', body: medication('m2', '456').replace('"strength"', '"amount"') })).status).toBe(201);
    expect(await (await stu3.fetch('Medication/m2')).text()).toMatch(/"denominator":\{"value":1\.0\}/);
    await server.waitForAggregation();
    const observations = await (await server.aggregated(r4, 'Observation?value-quantity=7.2')).text();
    expect(observations).toMatch(/"value":7\.20[,}]/);
    const merged = await (await server.aggregated(r4, 'Medication?code=http://snomed.info/sct|123')).text();
    expect(merged).toMatch(/"numerator":\{"value":2\.50\}/);
  });
});

/**
 * Examples of the specification that break its own rules, each refused with the rule named: a nested
 * Questionnaire item without linkId, SearchParameters without base (min 1), an id over 64 characters, and
 * logical models that are not abstract and have no baseDefinition (sdf-4).
 */
const INVALID_EXAMPLES: Record<string, RegExp> = {
  'Questionnaire-qs1.json': /linkId: missing required element 'linkId'/,
  'SearchParameter-questionnaireresponse-extensions-QuestionnaireResponse-item-subject.json': /SearchParameter\.id: must match pattern/,
  ...Object.fromEntries(
    ['codesystem-extensions-CodeSystem', 'valueset-extensions-ValueSet'].flatMap((p) =>
      ['author', 'effective', 'end', 'keyword', 'workflow'].map((n) => [`SearchParameter-${p}-${n}.json`, /SearchParameter\.base: missing required element 'base'/]),
    ),
  ),
  ...Object.fromEntries(['Definition', 'Event', 'FiveWs', 'Request'].map((n) => [`StructureDefinition-${n}.json`, /sdf-4/])),
};

test('every JSON example of the R4 specification up to 1 MB goes through update-as-create and read unchanged apart from meta', async () => {
  const files = readdirSync(R4_JSON).filter((f) => /^[A-Z].*\.json$/.test(f) && statSync(path.join(R4_JSON, f)).size <= 1_000_000);
  expect(files.length).toBeGreaterThan(5000);
  const refused: Record<string, string> = {};
  const changed: string[] = [];
  // A run outlasts an access token: a fresh one for each round of batches.
  const post = async (body: unknown) => {
    const token = await server.token(r4.clientId, r4.clientSecret);
    return json(await fetch(r4.baseUrl, { method: 'POST', body: jsonBody(body), headers: { authorization: `Bearer ${token}`, 'content-type': 'application/fhir+json' } }));
  };
  // Batches of PUTs, then batches of GETs: each entry is routed as its own request (http.html#transaction).
  for (let i = 0; i < files.length; i += 50) {
    const resources = files.slice(i, i + 50).map((f) => ({ file: f, resource: example(f) }));
    const batch = {
      resourceType: 'Bundle',
      type: 'batch',
      entry: resources.map(({ resource }) => ({ resource, request: { method: 'PUT', url: `${resource.resourceType}/${resource.id}` } })),
    };
    const put = await post(batch);
    expect([files[i], put.resourceType === 'Bundle' ? '' : stringifyFhirJson(put).slice(0, 500)]).toEqual([files[i], '']);
    const accepted = resources.filter(({ file }, n) => {
      const { status, outcome } = put.entry[n].response;
      if (!/^20[01]/.test(String(status))) refused[file] = `${status} ${outcome?.issue?.[0]?.diagnostics ?? ''}`;
      return /^20[01]/.test(String(status));
    });
    const reads = {
      resourceType: 'Bundle',
      type: 'batch',
      entry: accepted.map(({ resource }) => ({ request: { method: 'GET', url: `${resource.resourceType}/${resource.id}` } })),
    };
    const got = await post(reads);
    expect([files[i], got.resourceType === 'Bundle' ? '' : stringifyFhirJson(got).slice(0, 500)]).toEqual([files[i], '']);
    accepted.forEach(({ file, resource }, n) => {
      if (JSON.stringify(canonical(got.entry[n].resource)) !== JSON.stringify(canonical(resource))) changed.push(file);
    });
  }
  expect(changed).toEqual([]);
  expect(Object.keys(refused).sort()).toEqual(Object.keys(INVALID_EXAMPLES).sort());
  for (const [file, rule] of Object.entries(INVALID_EXAMPLES)) expect(refused[file]).toMatch(rule);
}, 1_800_000);
