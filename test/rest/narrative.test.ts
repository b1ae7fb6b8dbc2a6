import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { startServerWithR4AndStu3, type OutcomeBody, type Tenant, type TestServer } from '../support/testServer';

/**
 * The narrative rules (R4 narrative.html#xhtml; issue 15 item 2): every Narrative.div is a well-formed XHTML div
 * with only the elements and attributes txt-1 allows and some content (txt-2), on R4 and STU3 endpoints alike —
 * in the resource's text, a contained resource's and a Composition section's at any depth.
 */
const DATA = [path.resolve(__dirname, '../../../shared/data'), path.resolve(__dirname, '../../../../shared/data')].find((d) => existsSync(d));
const maybe = DATA ? test : test.skip;

let server: TestServer;
let r4: Tenant;
let stu3: Tenant;
beforeAll(async () => ({ server, r4, stu3 } = await startServerWithR4AndStu3()), 300_000);
afterAll(() => server.close());

const XHTML = 'http://www.w3.org/1999/xhtml';
const patient = (div: string) => ({ resourceType: 'Patient', text: { status: 'generated', div } });
const post = (tenant: Tenant, body: { resourceType: string }) => tenant.fetch(body.resourceType, { method: 'POST', body: JSON.stringify(body) });

/** Posts `body` and expects a 400 OperationOutcome; returns its issues as `expression | diagnostics`. */
async function refused(tenant: Tenant, body: { resourceType: string }): Promise<string[]> {
  const res = await post(tenant, body);
  const outcome = (await res.json()) as OutcomeBody;
  expect({ status: res.status, resourceType: outcome.resourceType }).toEqual({ status: 400, resourceType: 'OperationOutcome' });
  return outcome.issue.map((i) => `${(i.expression ?? []).join(',')} | ${i.diagnostics}`);
}

describe.each([
  ['R4', () => r4],
  ['STU3', () => stu3],
])('%s: a narrative that breaks the rules is refused, naming the div and the rule', (_version, tenant) => {
  test('a <script> element: txt-1', async () => {
    expect(await refused(tenant(), patient(`<div xmlns="${XHTML}"><p>Jo</p><script>alert(1)</script></div>`))).toEqual([
      expect.stringMatching(/^Patient\.text\.div \| Patient\.text\.div: txt-1: the element <script> is not allowed: The narrative SHALL contain only/),
    ]);
  });

  test('an onclick attribute, a javascript: link and a non-XHTML element: txt-1, each named', async () => {
    const issues = await refused(
      tenant(),
      patient(`<div xmlns="${XHTML}"><p onclick="steal()">Jo</p><a href=" JavaScript:steal()">x</a><svg xmlns="http://www.w3.org/2000/svg"/></div>`),
    );
    expect(issues).toEqual([
      expect.stringContaining('txt-1: the attribute onclick on <p> is not allowed (event attributes are active content)'),
      expect.stringContaining('txt-1: the href of <a> is a javascript: URL (active content)'),
      expect.stringContaining("txt-1: <svg> is not an XHTML element (namespace 'http://www.w3.org/2000/svg')"),
    ]);
  });

  test('a div that is not in the XHTML namespace', async () => {
    expect(await refused(tenant(), patient('<div><p>Jo</p></div>'))).toEqual([
      expect.stringContaining(`Patient.text.div: xhtml: the root <div> is not in the XHTML namespace (xmlns="${XHTML}")`),
    ]);
    expect(await refused(tenant(), patient(`<p xmlns="${XHTML}">Jo</p>`))).toEqual([expect.stringContaining('Patient.text.div: xhtml: the root element is <p>, not <div>')]);
  });

  test('an empty div, or one of whitespace only: txt-2', async () => {
    for (const div of [`<div xmlns="${XHTML}"/>`, `<div xmlns="${XHTML}">\n  <p> </p><br/>\n</div>`]) {
      expect(await refused(tenant(), patient(div))).toEqual([
        expect.stringContaining('Patient.text.div: txt-2: the div has no text and no image: The narrative SHALL have some non-whitespace content'),
      ]);
    }
  });

  test('malformed XML, and an entity XML does not define', async () => {
    expect(await refused(tenant(), patient(`<div xmlns="${XHTML}"><p>Jo</div>`))).toEqual([
      expect.stringMatching(/^Patient\.text\.div \| Patient\.text\.div: xhtml: not well-formed XML \(.+\)/),
    ]);
    expect(await refused(tenant(), patient(`<div xmlns="${XHTML}">Jo&nbsp;Bloggs</div>`))).toEqual([expect.stringContaining('xhtml: not well-formed XML')]);
  });

  test("a contained resource's narrative and a nested Composition section's are checked too", async () => {
    const contained = {
      resourceType: 'Observation',
      status: 'final',
      code: { text: 'x' },
      contained: [{ resourceType: 'Patient', id: 'p', text: { status: 'generated', div: `<div xmlns="${XHTML}"><form>Jo</form></div>` } }],
      subject: { reference: '#p' },
    };
    // STU3 also refuses any narrative in a contained resource (dom-1, dropped in R4).
    expect(await refused(tenant(), contained)).toEqual(
      expect.arrayContaining([expect.stringMatching(/^Observation\.contained\[0\]\.text\.div \| .*txt-1: the element <form> is not allowed/)]),
    );
    const section = (div: string, sections: unknown[] = []) => ({ title: 's', text: { status: 'generated', div }, ...(sections.length ? { section: sections } : {}) });
    const ok = `<div xmlns="${XHTML}">fine</div>`;
    const composition = {
      resourceType: 'Composition',
      status: 'final',
      type: { text: 'summary' },
      subject: { reference: 'Patient/p' },
      date: '2020-01-01',
      author: [{ display: 'A' }],
      title: 'T',
      section: [section(ok), section(ok, [section(ok, [section(`<div xmlns="${XHTML}">see <iframe src="https://x.example"/></div>`)])])],
    };
    const issues = await refused(tenant(), composition);
    expect(issues).toEqual([expect.stringMatching(/^Composition\.section\[1\]\.section\[0\]\.section\[0\]\.text\.div \| .*txt-1: the element <iframe> is not allowed/)]);
  });

  test("a stored Bundle's entries are checked", async () => {
    const document = {
      resourceType: 'Bundle',
      type: 'collection',
      entry: [{ fullUrl: 'urn:uuid:2d5b1ce2-8d2e-4b3e-9d55-3a1f8f6b9c01', resource: patient(`<div xmlns="${XHTML}"><object data="x.swf">Jo</object></div>`) }],
    };
    expect(await refused(tenant(), document)).toEqual([
      expect.stringMatching(/^Bundle\.entry\[0\]\.resource\.text\.div \| .*txt-1: the element <object> is not allowed/),
      expect.stringContaining('txt-1: the attribute data on <object> is not allowed'),
    ]);
  });
});

describe.each([
  ['R4', () => r4],
  ['STU3', () => stu3],
])('%s: valid narratives are accepted', (_version, tenant) => {
  test('a table, an image, links, style attributes, xml:lang and a namespace prefix', async () => {
    const rich =
      `<div xmlns="${XHTML}" xml:lang="en" lang="en"><h3 style="color: navy">Jo Bloggs</h3>` +
      '<table class="grid" border="1"><thead><tr><th colspan="2">Contact</th></tr></thead>' +
      '<tbody><tr><td style="font-weight: bold">Phone</td><td>0123</td></tr></tbody></table>' +
      '<p><img src="data:image/png;base64,iVBORw0KGgo=" alt="photo" width="10"/> <a href="https://example.org/jo">record</a> <a name="top"/><a href="#top">up</a></p></div>';
    const res = await post(tenant(), patient(rich));
    expect([res.status, res.status === 201 ? '' : await res.text()]).toEqual([201, '']);
    expect(((await res.json()) as { text: { div: string } }).text.div).toBe(rich);
    // An image alone is content (txt-2); a prefixed XHTML div is the same XHTML div.
    for (const div of [`<div xmlns="${XHTML}"><img src="#photo"/></div>`, `<x:div xmlns:x="${XHTML}"><x:p>Jo</x:p></x:div>`]) {
      expect([div, (await post(tenant(), patient(div))).status]).toEqual([div, 201]);
    }
  });

  maybe("every narrative of Synthea's sample (Patient and CarePlan), in batches", async () => {
    const dir = path.join(DATA as string, _version === 'R4' ? 'synthea-r4' : 'synthea-stu3');
    const resources = readdirSync(dir)
      .filter((f) => f.endsWith('.json'))
      .sort()
      .slice(0, 10)
      .flatMap((f) => (JSON.parse(readFileSync(path.join(dir, f), 'utf8')) as { entry: { resource: { resourceType: string; id: string; text?: unknown } }[] }).entry)
      .map((e) => e.resource)
      .filter((r) => r.text);
    expect(resources.length).toBeGreaterThanOrEqual(10);
    const batch = {
      resourceType: 'Bundle',
      type: 'batch',
      entry: resources.map((resource) => ({ resource, request: { method: 'PUT', url: `${resource.resourceType}/${resource.id}` } })),
    };
    const res = await tenant().fetch('', { method: 'POST', body: JSON.stringify(batch) });
    expect(res.status).toBe(200);
    const statuses = ((await res.json()) as { entry: { response: { status: string; outcome?: OutcomeBody } }[] }).entry.map((e) => e.response);
    const failed = statuses.filter((r) => !/^20[01]/.test(r.status)).map((r) => r.outcome?.issue[0]?.diagnostics);
    expect(failed).toEqual([]);
  });
});
