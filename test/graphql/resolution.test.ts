import type { Resource } from '../../src/fhir/types';
import { GraphqlDoor } from '../../src/graphql/graphqlDoor';
import { LIST_MAX } from '../../src/graphql/listSearch';
import { fakeSource } from './fakeSource';

/** References, reverse references and Lists over an in-memory data source that counts its searches. */
const door = new GraphqlDoor({ limits: { maxDepth: 15, maxAliases: 50, maxCost: 50_000 }, introspection: true, sandbox: false });
type Json = Record<string, any>;

const patient = (id: string): Resource => ({
  resourceType: 'Patient',
  id,
  contained: [{ resourceType: 'Practitioner', id: 'gp', name: [{ family: 'Contained' }] }],
  generalPractitioner: [{ reference: '#gp' }],
});
const observation = (id: string, subject: string): Resource => ({
  resourceType: 'Observation',
  id,
  status: 'final',
  code: { text: id },
  subject: { reference: `Patient/${subject}` },
});

describe('Reference.resource', () => {
  const data = fakeSource([
    patient('p1'),
    { resourceType: 'Practitioner', id: 'dr', name: [{ family: 'Stored' }] },
    {
      resourceType: 'Observation',
      id: 'o',
      status: 'final',
      code: {},
      subject: { reference: 'Patient/p1' },
      performer: [{ reference: 'Practitioner/dr' }, { reference: 'Practitioner/gone' }, { display: 'a nurse' }],
    },
  ]);
  const run = (query: string) => door.execute({ query }, data.context());

  test('follows a relative reference, and a #id to the containing resource', async () => {
    const { data: out, errors } = await run(
      '{ Observation(id: "o") { subject { resource { ... on Patient { id generalPractitioner { resource { ... on Practitioner { name { family } } } } } } } } }',
    );
    expect(errors).toBeUndefined();
    expect(out?.Observation).toEqual({ subject: { resource: { id: 'p1', generalPractitioner: [{ resource: { name: [{ family: 'Contained' }] } }] } } });
  });

  test('type: only follows references to that type; optional: true turns the unresolvable into null', async () => {
    const { data: out, errors } = await run(
      '{ Observation(id: "o") { subject { resource(type: Practitioner) { id } } performer { resource(optional: true) { ... on Practitioner { name { family } } } } } }',
    );
    expect(errors).toBeUndefined();
    expect(out?.Observation).toEqual({ subject: { resource: null }, performer: [{ resource: { name: [{ family: 'Stored' }] } }, { resource: null }, { resource: null }] });
  });

  test('an unresolvable reference is an error carrying an OperationOutcome in extensions.resource', async () => {
    const { errors } = await run('{ Observation(id: "o") { performer { resource { id } } } }');
    expect(errors).toHaveLength(1);
    expect(errors?.[0].path).toEqual(['Observation', 'performer', 1, 'resource']);
    expect(errors?.[0].extensions).toMatchObject({ status: 404, resource: { resourceType: 'OperationOutcome', issue: [{ code: 'not-found' }] } });
  });

  test('type takes the ResourceType enum, as the spec writes it (resource(type: Patient)); a quoted string is refused', async () => {
    const { errors } = await run('{ Observation(id: "o") { subject { resource(type: "Patient") { id } } } }');
    expect(errors?.[0].message).toMatch(/ResourceType/);
  });
});

describe('reverse references', () => {
  const patients = ['a', 'b', 'c', 'd'].map(patient);
  const observations = patients.flatMap((p, i) => Array.from({ length: i + 1 }, (_, j) => observation(`${p.id}${j}`, p.id as string)));

  test('one search serves the reverse references of every Patient in a list, split per Patient', async () => {
    const data = fakeSource([...patients, ...observations]);
    const { data: out, errors } = await door.execute({ query: '{ PatientList { id ObservationList(_reference: subject) { id } } }' }, data.context());
    expect(errors).toBeUndefined();
    expect((out?.PatientList as Json[]).map((p) => [p.id, p.ObservationList.map((o: Json) => o.id)])).toEqual([
      ['a', ['a0']],
      ['b', ['b0', 'b1']],
      ['c', ['c0', 'c1', 'c2']],
      ['d', ['d0', 'd1', 'd2', 'd3']],
    ]);
    expect(data.calls.map((c) => c.type)).toEqual(['Patient', 'Observation']);
    expect(data.calls[1].params).toContainEqual(['subject', 'Patient/a,Patient/b,Patient/c,Patient/d']);
  });

  test('_count and _offset page each Patient’s list', async () => {
    const data = fakeSource([...patients, ...observations]);
    const { data: out } = await door.execute({ query: '{ PatientList { id ObservationList(_reference: patient, _count: 2, _offset: 1) { id } } }' }, data.context());
    expect((out?.PatientList as Json[]).map((p) => p.ObservationList.map((o: Json) => o.id))).toEqual([[], ['b1'], ['c1', 'c2'], ['d1', 'd2']]);
  });

  test('when the combined matches exceed one page, each Patient gets its own search', async () => {
    const many = Array.from({ length: LIST_MAX }, (_, i) => observation(`x${i}`, 'a'));
    const data = fakeSource([patients[0], patients[1], ...many, observation('y', 'b')]);
    const { data: out, errors } = await door.execute({ query: '{ PatientList { id ObservationList(_reference: subject) { id } } }' }, data.context());
    expect(errors).toBeUndefined();
    expect((out?.PatientList as Json[]).map((p) => p.ObservationList.length)).toEqual([LIST_MAX, 1]);
    expect(data.calls.map((c) => c.type)).toEqual(['Patient', 'Observation', 'Observation', 'Observation']);
  });
});

describe('XList', () => {
  test('returns every match, or an error rather than a silently cut list', async () => {
    const data = fakeSource(Array.from({ length: LIST_MAX + 1 }, (_, i) => patient(`p${i}`)));
    const all = await door.execute({ query: '{ PatientList { id } }' }, data.context());
    expect(all.errors?.[0].message).toMatch(/More than 1000 Patient resources match/);
    expect(all.errors?.[0].extensions).toMatchObject({ status: 400, resource: { issue: [{ code: 'too-costly' }] } });
    const page = await door.execute({ query: '{ PatientList(_count: 3, _offset: 2) { id } }' }, data.context());
    expect((page.data?.PatientList as Json[]).map((p) => p.id)).toEqual(['p2', 'p3', 'p4']);
  });
});

describe('references below a list', () => {
  // Performers: two stored Practitioners, one missing, one Organization; subjects: Patients.
  const resources: Resource[] = [
    patient('p1'),
    { resourceType: 'Practitioner', id: 'dr1', name: [{ family: 'One' }] },
    { resourceType: 'Practitioner', id: 'dr2', name: [{ family: 'Two' }] },
    { resourceType: 'Organization', id: 'org', name: 'Org' },
    ...['dr1', 'dr2', 'gone'].map((dr, i) => ({ ...observation(`o${i}`, 'p1'), performer: [{ reference: `Practitioner/${dr}` }, { reference: 'Organization/org' }] })),
  ];
  const searches = (data: ReturnType<typeof fakeSource>) => data.calls.map((c) => [c.type, c.params.find(([k]) => k === '_id')?.[1] ?? '']);

  test('are loaded in one search per type, and only those the query follows', async () => {
    const data = fakeSource(resources);
    const { data: out, errors } = await door.execute(
      {
        query:
          '{ ObservationList { id performer { resource(type: Practitioner, optional: true) { ... on Practitioner { name { family } } } } subject @skip(if: true) { resource { id } } } }',
      },
      data.context(),
    );
    expect(errors).toBeUndefined();
    expect((out?.ObservationList as Json[]).map((o) => o.performer.map((p: Json) => p.resource?.name[0].family ?? null))).toEqual([
      ['One', null],
      ['Two', null],
      [null, null],
    ]);
    expect(searches(data)).toEqual([
      ['Observation', ''],
      ['Practitioner', 'dr1,dr2,gone'],
    ]);
  });

  test('an unresolvable one is an error at its own path; the others resolve', async () => {
    const data = fakeSource(resources);
    const { data: out, errors } = await door.execute({ query: '{ ObservationList { performer { resource(type: Practitioner) { id } } } }' }, data.context());
    expect(errors?.map((e) => e.path)).toEqual([['ObservationList', 2, 'performer', 0, 'resource']]);
    expect(errors?.[0].extensions).toMatchObject({ status: 404 });
    expect((out?.ObservationList as Json[]).map((o) => o.performer[0].resource?.id ?? null)).toEqual(['dr1', 'dr2', null]);
  });

  test('through fragments, variables in @include, a Connection and #id references, with the same searches', async () => {
    const data = fakeSource(resources);
    const { data: out, errors } = await door.execute(
      {
        query: `query ($yes: Boolean!) {
          ObservationConnection { edges { resource { ...performers subject @include(if: $yes) { resource { ... on Patient { generalPractitioner { resource { ... on Practitioner { name { family } } } } } } } } } }
        }
        fragment performers on Observation { performer { resource { ... on Organization { name } } } }`,
        variables: { yes: true },
      },
      data.context(),
    );
    expect(errors?.map((e) => e.path)).toEqual([['ObservationConnection', 'edges', 2, 'resource', 'performer', 0, 'resource']]);
    const edges = (out?.ObservationConnection as Json).edges as Json[];
    expect(edges[0].resource.performer[1].resource).toEqual({ name: 'Org' });
    expect(edges[0].resource.subject.resource.generalPractitioner[0].resource.name[0].family).toBe('Contained');
    expect(
      searches(data)
        .map(([type]) => type)
        .sort(),
    ).toEqual(['Observation', 'Organization', 'Patient', 'Practitioner']);
  });
});
