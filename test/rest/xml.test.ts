// FHIR XML at the REST door, through the real server: what a HAPI-based integration or any XML FHIR client does.
import { fhirXmlToJson } from '../../src/fhir/xml';
import { startServerWithR4AndStu3, type Tenant, type TestServer } from '../support/testServer';

let server: TestServer;
let r4: Tenant;
let stu3: Tenant;

beforeAll(async () => ({ server, r4, stu3 } = await startServerWithR4AndStu3()), 300_000);
afterAll(() => server.close());

const XML = { 'content-type': 'application/fhir+xml', accept: 'application/fhir+xml' };
const NARRATIVE = '<div xmlns="http://www.w3.org/1999/xhtml"><p>Peter &amp; <b>Chalmers</b> &lt;Jim&gt;</p></div>';

const transaction = `<?xml version="1.0" encoding="UTF-8"?>
<Bundle xmlns="http://hl7.org/fhir">
  <type value="transaction"/>
  <entry>
    <fullUrl value="urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a"/>
    <resource>
      <Patient>
        <text><status value="generated"/>${NARRATIVE}</text>
        <identifier><system value="urn:oid:1.2.36.146.595.217.0.1"/><value value="12345"/></identifier>
        <name><family value="Chalmers"/><given value="Peter"/><given value="James"/></name>
        <birthDate value="1974-12-25">
          <extension url="http://hl7.org/fhir/StructureDefinition/patient-birthTime"><valueDateTime value="1974-12-25T14:35:45-05:00"/></extension>
        </birthDate>
      </Patient>
    </resource>
    <request><method value="POST"/><url value="Patient"/></request>
  </entry>
  <entry>
    <fullUrl value="urn:uuid:88f151c0-a954-468a-88bd-5ae15c08e059"/>
    <resource>
      <Observation>
        <status value="final"/>
        <code><coding><system value="http://loinc.org"/><code value="29463-7"/></coding></code>
        <subject><reference value="urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a"/></subject>
        <valueQuantity><value value="185"/><unit value="lbs"/></valueQuantity>
      </Observation>
    </resource>
    <request><method value="POST"/><url value="Observation"/></request>
  </entry>
</Bundle>`;

async function xmlOf(res: Response, version: 'R4' | 'STU3' = 'R4'): Promise<any> {
  expect(res.headers.get('content-type')).toMatch(/^application\/(fhir\+)?xml; charset=utf-8/);
  return fhirXmlToJson(await res.text(), version, { numbers: 'native' });
}

test('a transaction Bundle sent in XML gets an XML transaction-response, and its resources read back in JSON and XML', async () => {
  const res = await r4.fetch('', { method: 'POST', headers: XML, body: transaction });
  expect(res.status).toBe(200);
  const response = await xmlOf(res);
  expect(response.resourceType).toBe('Bundle');
  expect(response.type).toBe('transaction-response');
  expect(response.entry.map((e: any) => e.response.status)).toEqual([expect.stringMatching(/^201/), expect.stringMatching(/^201/)]);

  const patientId = response.entry[0].response.location.split('/')[1];
  const observationId = response.entry[1].response.location.split('/')[1];
  const json = (await (await r4.fetch(`Patient/${patientId}`)).json()) as any;
  expect(json.name[0].given).toEqual(['Peter', 'James']);
  expect(json._birthDate.extension[0]).toEqual({ url: 'http://hl7.org/fhir/StructureDefinition/patient-birthTime', valueDateTime: '1974-12-25T14:35:45-05:00' });
  expect(json.text.div).toBe(NARRATIVE);

  const xml = await (await r4.fetch(`Patient/${patientId}?_format=xml`)).text();
  expect(xml).toContain(`<text><status value="generated"/>${NARRATIVE}</text>`);
  expect(xml).toContain('<birthDate value="1974-12-25"><extension url="http://hl7.org/fhir/StructureDefinition/patient-birthTime">');
  const observation = await xmlOf(await r4.fetch(`Observation/${observationId}`, { headers: { accept: 'application/fhir+xml' } }));
  expect(observation.subject.reference).toBe(`Patient/${patientId}`);
  expect(observation.valueQuantity.value).toBe(185);
});

describe('which format the answer is in', () => {
  let id: string;
  beforeAll(async () => {
    const res = await r4.fetch('Patient', { method: 'POST', body: JSON.stringify({ resourceType: 'Patient', active: true, gender: 'female' }) });
    id = ((await res.json()) as any).id;
  });

  test.each([
    ['_format=xml', `?_format=xml`, {}, 'application/fhir+xml'],
    ['_format=application/fhir+xml', `?_format=${encodeURIComponent('application/fhir+xml')}`, {}, 'application/fhir+xml'],
    ['_format=text/xml', `?_format=${encodeURIComponent('text/xml')}`, {}, 'application/xml'],
    ['_format wins over Accept', `?_format=xml`, { accept: 'application/fhir+json' }, 'application/fhir+xml'],
    ['Accept: application/fhir+xml', '', { accept: 'application/fhir+xml' }, 'application/fhir+xml'],
    ['Accept: application/xml', '', { accept: 'application/xml' }, 'application/xml'],
    ['Accept: the DSTU2 name application/xml+fhir', '', { accept: 'application/xml+fhir' }, 'application/fhir+xml'],
    ['Accept with qualities preferring XML', '', { accept: 'application/fhir+json;q=0.5, application/fhir+xml;q=0.9' }, 'application/fhir+xml'],
    [
      'the Accept header of the HAPI client set to XML',
      '',
      { accept: 'application/fhir+xml;q=1.0, application/fhir+json;q=1.0, application/xml+fhir;q=0.9, application/json+fhir;q=0.9' },
      'application/fhir+xml',
    ],
    ['Accept with qualities preferring JSON', '', { accept: 'application/fhir+xml;q=0.4, application/fhir+json' }, 'application/fhir+json'],
    ['no Accept', '', {}, 'application/fhir+json'],
  ])('%s', async (_what, query, headers, type) => {
    const res = await r4.fetch(`Patient/${id}${query}`, { headers });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe(`${type}; charset=utf-8`);
    const body = type.includes('xml') ? fhirXmlToJson(await res.text(), 'R4') : await res.json();
    expect(body).toMatchObject({ resourceType: 'Patient', id, active: true, gender: 'female' });
  });

  test('a resource created in XML without an Accept header is answered in XML', async () => {
    const res = await r4.fetch('Patient', {
      method: 'POST',
      headers: { 'content-type': 'application/fhir+xml' },
      body: '<Patient xmlns="http://hl7.org/fhir"><gender value="male"/></Patient>',
    });
    expect(res.status).toBe(201);
    expect((await xmlOf(res)).gender).toBe('male');
  });

  test('an update in XML (PUT) replaces the resource', async () => {
    const body = `<Patient xmlns="http://hl7.org/fhir"><id value="${id}"/><active value="false"/></Patient>`;
    const res = await r4.fetch(`Patient/${id}`, { method: 'PUT', headers: XML, body });
    expect(res.status).toBe(200);
    expect(await xmlOf(res)).toMatchObject({ id, active: false, meta: { versionId: '2' } });
  });

  test('a search answers a searchset Bundle in XML with the resources inside', async () => {
    const bundle = await xmlOf(await r4.fetch(`Patient?_id=${id}&_format=xml`));
    expect(bundle.type).toBe('searchset');
    expect(bundle.entry[0].resource).toMatchObject({ resourceType: 'Patient', id });
  });

  test('the CapabilityStatement lists XML and can itself be read in XML', async () => {
    const cs = await xmlOf(await r4.fetch('metadata?_format=xml'));
    expect(cs.format).toEqual(expect.arrayContaining(['application/fhir+json', 'application/fhir+xml']));
    expect(cs.rest[0].resource.length).toBeGreaterThan(140);
  });

  test('the aggregated endpoint speaks XML too', async () => {
    const cs = await xmlOf(await server.aggregated(r4, 'metadata', { headers: { accept: 'application/fhir+xml' } }));
    expect(cs.resourceType).toBe('CapabilityStatement');
  });

  test('neither JSON nor XML acceptable (RDF) is 406', async () => {
    expect((await r4.fetch(`Patient/${id}`, { headers: { accept: 'text/turtle' } })).status).toBe(406);
  });
});

describe('errors come back in XML when XML was asked for', () => {
  test('a read of a missing resource: 404 OperationOutcome in XML', async () => {
    const res = await r4.fetch('Patient/never', { headers: { accept: 'application/fhir+xml' } });
    expect(res.status).toBe(404);
    expect((await xmlOf(res)).resourceType).toBe('OperationOutcome');
  });

  test('no token: 401 OperationOutcome in XML', async () => {
    const res = await fetch(`${r4.baseUrl}/Patient/x?_format=xml`);
    expect(res.status).toBe(401);
    expect((await xmlOf(res)).issue[0].code).toBe('login');
  });

  test('malformed XML is 400 saying where', async () => {
    const res = await r4.fetch('Patient', { method: 'POST', headers: XML, body: '<Patient xmlns="http://hl7.org/fhir"><active value="true"></Patient>' });
    expect(res.status).toBe(400);
    const outcome = await xmlOf(res);
    expect(outcome.issue[0].diagnostics).toMatch(/not well-formed XML: 1:\d+/);
  });

  test('XML that is not FHIR is 400 naming the element', async () => {
    const res = await r4.fetch('Patient', { method: 'POST', headers: XML, body: '<Patient xmlns="http://hl7.org/fhir"><nickname value="Jim"/></Patient>' });
    expect(res.status).toBe(400);
    const outcome = await xmlOf(res);
    expect(outcome.issue[0]).toMatchObject({ code: 'invalid', expression: ['Patient.nickname'] });
  });

  test('an external entity (XXE) is refused with 400 and nothing of the file comes back', async () => {
    const body =
      '<?xml version="1.0"?><!DOCTYPE Patient [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><Patient xmlns="http://hl7.org/fhir"><name><family value="&xxe;"/></name></Patient>';
    const res = await r4.fetch('Patient', { method: 'POST', headers: XML, body });
    expect(res.status).toBe(400);
    const text = await res.text();
    expect(text).not.toContain('root:');
    expect(fhirXmlToJson(text, 'R4').issue).toEqual([expect.objectContaining({ diagnostics: expect.stringMatching(/document type declaration/) })]);
    const search = (await (await r4.fetch('Patient?family=root&_total=accurate')).json()) as any;
    expect(search.total).toBe(0);
  });
});

describe('an STU3 endpoint reads and writes STU3 XML', () => {
  test('an STU3 Condition (clinicalStatus a code, assertedDate) round-trips in XML; R4 shapes are refused', async () => {
    const condition =
      '<Condition xmlns="http://hl7.org/fhir"><clinicalStatus value="active"/><verificationStatus value="confirmed"/>' +
      '<code><text value="Asthma"/></code><subject><reference value="Patient/p1"/></subject><assertedDate value="2017-03-01"/></Condition>';
    const created = await stu3.fetch('Condition', { method: 'POST', headers: XML, body: condition });
    expect(created.status).toBe(201);
    const read = await stu3.fetch(`Condition/${(await xmlOf(created, 'STU3')).id}?_format=xml`);
    const xml = await read.text();
    expect(xml).toContain('<clinicalStatus value="active"/><verificationStatus value="confirmed"/>');
    expect(xml).toContain('<assertedDate value="2017-03-01"/>');

    const r4Shape =
      '<Condition xmlns="http://hl7.org/fhir"><clinicalStatus><text value="active"/></clinicalStatus><subject><reference value="Patient/p1"/></subject><recordedDate value="2017-03-01"/></Condition>';
    const refused = await stu3.fetch('Condition', { method: 'POST', headers: XML, body: r4Shape });
    expect(refused.status).toBe(400);
  });
});
