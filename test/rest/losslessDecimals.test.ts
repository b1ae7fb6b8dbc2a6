// Decimals keep their digits end to end (FHIR R4 datatypes.html#decimal: `1.50` is not `1.5`): REST in JSON
// and XML, Bundles, history, search, $graphql and /graphql, and the aggregate.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { isFhirDecimal, parseFhirJson, stringifyFhirJson } from '../../src/fhir/losslessJson';
import { startServerWithR4AndStu3, type Tenant, type TestServer } from '../support/testServer';

const R4_JSON = path.dirname(require.resolve('hl7.fhir.r4.examples/package.json'));

let server: TestServer;
let r4: Tenant;
let stu3: Tenant;

beforeAll(async () => ({ server, r4, stu3 } = await startServerWithR4AndStu3({ defaultSourceOrg: 'Organization/src' })), 300_000);
afterAll(() => server.close());

/** Sorted keys, numbers as their exact digits: equal content compares equal whatever jsonb's key order. */
function canonical(value: unknown): unknown {
  if (isFhirDecimal(value)) return `#${value.toString()}`;
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

  test('1.50 keeps its digits after strings that hold number-like text, escaped quotes and trailing backslashes', async () => {
    // The parser's fast path reads only numbers between strings: text inside strings (a UUID's `018f…`, `seed: -48`,
    // an escaped quote before `: 1.00`, a string ending in a backslash) must neither hide a decimal nor pose as one.
    // As JSON text: `\"` is an escaped quote, `\\` an escaped backslash right before the closing quote.
    const text = 'urn:uuid:018f428e-34f6 seed: -48723915457745318 \\"value\\": 1.00, \\\\';
    const body = weight('w9', '1.50').replace('"text":"weight"', `"text":"${text}"`);
    expect((await r4.fetch('Observation/w9', { method: 'PUT', body })).status).toBe(201);
    const read = await (await r4.fetch('Observation/w9')).text();
    expect(read).toMatch(/"value":1\.50[,}]/);
    expect((parseFhirJson(read) as any).code.text).toBe('urn:uuid:018f428e-34f6 seed: -48723915457745318 "value": 1.00, \\');
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

describe('numbers PostgreSQL would rewrite keep their text: exponents and negative zero', () => {
  const numbers = ['1.0e0', '1E-22', '1.000000000000000000E-245', '-1.000000000000000000E+245', '1e-7', '2.5E+3', '-0', '-0.0'];
  const components = numbers.map((n) => `{"code":{"text":"c"},"valueQuantity":{"value":${n},"unit":"g"}}`).join(',');
  const observation = (id: string) => `{"resourceType":"Observation","id":"${id}","status":"final","code":{"text":"exponents"},"component":[${components}]}`;
  /** The quantities' numbers, as written in the text (the only `value` elements of these resources). */
  const written = (text: string) => [...text.matchAll(/"value":([^,}]+)/g)].map((m) => m[1]);

  test('the R4 example Observation-decimal comes back as published: 1E-22, 1.000000000000000000E-245, -1.000000000000000000E+245', async () => {
    const resource = example('Observation-decimal.json');
    // Created here or by the test above (which PUTs it too).
    expect([200, 201]).toContain((await r4.fetch('Observation/decimal', { method: 'PUT', body: jsonBody(resource) })).status);
    const text = await (await r4.fetch('Observation/decimal')).text();
    expect(written(text)).toEqual(['1.0', '1.00', '1.0', '1E-22', '1000000000000000000', '1.000000000000000000E-245', '-1.000000000000000000E+245']);
    expect(canonical(parseFhirJson(text))).toEqual(canonical(resource));
  });

  test('read, vread, history, a search Bundle, a transaction response and XML keep every form', async () => {
    expect((await r4.fetch('Observation/e1', { method: 'PUT', body: observation('e1') })).status).toBe(201);
    const bundle = `{"resourceType":"Bundle","type":"transaction","entry":[{"resource":${observation('e1')},"request":{"method":"PUT","url":"Observation/e1"}}]}`;
    const transaction = await r4.fetch('', { method: 'POST', body: bundle, headers: { prefer: 'return=representation' } });
    expect(written(await transaction.text())).toEqual(numbers);
    for (const path of ['Observation/e1', 'Observation/e1/_history/1', 'Observation/e1/_history', 'Observation?_id=e1']) {
      const text = await (await r4.fetch(path)).text();
      expect([path, written(text).slice(0, numbers.length)]).toEqual([path, numbers]);
    }
    const xml = await (await r4.fetch('Observation/e1', { headers: { accept: 'application/fhir+xml' } })).text();
    expect([...xml.matchAll(/<value value="([^"]+)"\/>/g)].map((m) => m[1])).toEqual(numbers);
  });

  test('search compares them numerically', async () => {
    for (const q of ['component-value-quantity=2500', 'component-value-quantity=gt2499', 'component-value-quantity=1E-7']) {
      const bundle = await json(await r4.fetch(`Observation?${q}&_id=e1`));
      expect([q, bundle.entry?.length ?? 0]).toEqual([q, 1]);
    }
  });

  test('$graphql and the aggregate give them back as written; STU3 bodies keep them too', async () => {
    const query = '{ Observation(id: "e1") { component { valueQuantity { value } } } }';
    const rest = await (await r4.fetch(`$graphql?query=${encodeURIComponent(query)}`)).text();
    expect([...rest.matchAll(/"value":([^}]+)\}/g)].map((m) => m[1])).toEqual(numbers);
    expect((await stu3.fetch('Observation/e2', { method: 'PUT', body: observation('e2') })).status).toBe(201);
    expect(written(await (await stu3.fetch('Observation/e2')).text())).toEqual(numbers);
    // The patient the copy belongs to, and its source organisation (as the describe above makes them).
    await r4.fetch('Organization/do', { method: 'PUT', body: JSON.stringify({ resourceType: 'Organization', id: 'do', identifier: [{ system: ODS, value: 'DEC' }] }) });
    await r4.fetch('Patient/dp', {
      method: 'PUT',
      body: JSON.stringify({ resourceType: 'Patient', id: 'dp', identifier: [{ system: NHS, value: '9000000009' }], managingOrganization: { reference: 'Organization/do' } }),
    });
    const copy = `{"resourceType":"Observation","id":"e3","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/dp"},"valueQuantity":{"value":1.0e0,"unit":"kg"}}`;
    expect((await r4.fetch('Observation/e3', { method: 'PUT', body: copy })).status).toBe(201);
    await server.waitForAggregation();
    expect(await (await server.aggregated(r4, 'Observation?value-quantity=1&code:text=x')).text()).toMatch(/"value":1\.0e0[,}]/);
  });

  test('a replayed answer (Idempotency-Key) keeps them', async () => {
    const send = () => r4.fetch('Observation', { method: 'POST', body: observation('ignored'), headers: { 'idempotency-key': 'exp-1', prefer: 'return=representation' } });
    const first = await send();
    expect(first.status).toBe(201);
    expect(written(await first.text())).toEqual(numbers);
    const replay = await send();
    expect(replay.status).toBe(201);
    expect(written(await replay.text())).toEqual(numbers);
  });

  test('a decimal beyond what PostgreSQL numeric holds is a 400 naming the element, as a write and as a search value (was a 500)', async () => {
    for (const v of ['1e400000', '1E-20000', `1${'0'.repeat(131_072)}`]) {
      const res = await r4.fetch('Observation', { method: 'POST', body: `{"resourceType":"Observation","status":"final","code":{"text":"x"},"valueQuantity":{"value":${v}}}` });
      expect([v.slice(0, 12), res.status]).toEqual([v.slice(0, 12), 400]);
      expect(await res.text()).toContain('Observation.valueQuantity.value: is beyond the decimals this server stores');
    }
    // The edges of the range are kept.
    for (const v of ['1e131071', '1e-16383']) {
      const res = await r4.fetch('Observation', { method: 'POST', body: `{"resourceType":"Observation","status":"final","code":{"text":"x"},"valueQuantity":{"value":${v}}}` });
      expect([v, res.status]).toEqual([v, 201]);
      expect(written(await res.text())).toEqual([v]);
    }
    for (const q of ['gt1e400000', '1e-20000']) expect([q, (await r4.fetch(`Observation?value-quantity=${q}`)).status]).toEqual([q, 400]);
  });

  test('a string that starts with the character used to store them stays the string it was', async () => {
    const strings = ['\uFDD01e3', '\uFDD0\uFDD0x', '\uFDD0', 'a\uFDD0'];
    const resource = { resourceType: 'Observation', id: 'e4', status: 'final', code: { text: strings[0], coding: strings.map((code) => ({ code })) }, valueString: strings[1] };
    expect((await r4.fetch('Observation/e4', { method: 'PUT', body: JSON.stringify(resource) })).status).toBe(201);
    const got = (await (await r4.fetch('Observation/e4')).json()) as typeof resource;
    expect([got.code, got.valueString]).toEqual([resource.code, resource.valueString]);
  });
});

/**
 * Examples of the specification that break its own rules, each refused with the rule named: a nested
 * Questionnaire item without linkId, SearchParameters without base (min 1), an id over 64 characters,
 * logical models that are not abstract and have no baseDefinition (sdf-4), and narratives of whitespace
 * only (txt-2).
 */
const INVALID_EXAMPLES: Record<string, RegExp> = {
  ...Object.fromEntries(
    ['ActivityDefinition-blood-tubes-supply', 'ActivityDefinition-heart-valve-replacement', 'EventDefinition-example', 'Questionnaire-zika-virus-exposure-assessment'].map((n) => [
      `${n}.json`,
      /\.text\.div: txt-2: /,
    ]),
  ),
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
