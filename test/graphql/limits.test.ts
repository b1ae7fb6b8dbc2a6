import { GraphqlDoor } from '../../src/graphql/graphqlDoor';
import { fakeSource } from './fakeSource';

/** Depth, alias and cost limits are checked before execution: an operation over a limit reads nothing. */
const door = new GraphqlDoor({ limits: { maxDepth: 6, maxAliases: 3, maxCost: 500 }, introspection: true, sandbox: false });
const data = () => fakeSource([{ resourceType: 'Patient', id: 'p', name: [{ family: 'F' }] }]);

test('an operation within the limits runs', async () => {
  const f = data();
  const { data: out, errors } = await door.execute({ query: '{ Patient(id: "p") { name { family } } }' }, f.context());
  expect(errors).toBeUndefined();
  expect(out).toEqual({ Patient: { name: [{ family: 'F' }] } });
});

test.each([
  ['depth', '{ PatientList(_count: 1) { link { other { resource { ... on Patient { link { other { reference } } } } } } } }', /depth is 7, over the limit of 6/],
  ['aliases', '{ a: Patient(id: "p") { id } b: Patient(id: "p") { id } c: Patient(id: "p") { id } d: Patient(id: "p") { id } }', /aliases is 4, over the limit of 3/],
  ['cost', '{ PatientList(_count: 100) { id ObservationList(_reference: subject) { id } } }', /cost is \d+, over the limit of 500/],
])('over the %s limit: a GraphQL error and no data read', async (_what, query, message) => {
  const f = data();
  const result = await door.execute({ query }, f.context());
  expect(result.errors?.[0].message).toMatch(message);
  expect(result.errors?.[0].extensions?.code).toBe('QUERY_TOO_COMPLEX');
  expect(result.data).toBeUndefined();
  expect(f.calls).toEqual([]);
});

test.each([
  ['`_count` from a variable', 'query ($n: Int) { PatientList(_count: $n) { id ObservationList(_reference: subject) { id } } }', { n: 1000 }],
  ["`_count` from a variable's default", 'query ($n: Int = 1000) { PatientList(_count: $n) { id ObservationList(_reference: subject) { id } } }', {}],
  ['a list inside a fragment', 'query ($n: Int) { PatientList(_count: $n) { ...f } } fragment f on Patient { ObservationList(_reference: subject, _count: $n) { id } }', { n: 30 }],
  [
    'a list skipped by a variable (counted all the same)',
    'query ($n: Int, $s: Boolean!) { PatientList(_count: $n) @skip(if: $s) { ObservationList(_reference: subject) { id } } }',
    { n: 100, s: true },
  ],
])('%s counts towards the cost; nothing is read', async (_what, query, variables) => {
  const f = data();
  const result = await door.execute({ query, variables }, f.context());
  expect(result.errors?.[0].message).toMatch(/cost is \d+, over the limit of 500/);
  expect(f.calls).toEqual([]);
});

test('a `_count` over the maximum page costs the maximum page, which is all that runs', async () => {
  const f = data();
  const result = await door.execute({ query: 'query ($n: Int) { PatientList(_count: $n) { id } }', variables: { n: 1_000_000 } }, f.context());
  // 1 for the list, 1 for each of at most 1,000 ids.
  expect(result.errors?.[0].message).toBe("The operation's cost is 1001, over the limit of 500");
});

test('the operation that runs is measured, not the others in the document', async () => {
  const f = data();
  const query = 'query cheap { Patient(id: "p") { id } } query dear { PatientList(_count: 1000) { id name { family } } }';
  expect((await door.execute({ query, operationName: 'cheap' }, f.context())).errors).toBeUndefined();
  expect((await door.execute({ query, operationName: 'dear' }, f.context())).errors?.[0].extensions?.code).toBe('QUERY_TOO_COMPLEX');
});

test("a repeating element's `_count` pages what the resource holds: what is below it counts once, not `_count` times", async () => {
  const f = data();
  // Priced as a search page, name(_count: 1000) { family } would cost 1 + 1 + 1000 × 1, over 500.
  const result = await door.execute({ query: '{ Patient(id: "p") { name(_count: 1000) { family } } }' }, f.context());
  expect(result.errors).toBeUndefined();
  expect(result.data).toEqual({ Patient: { name: [{ family: 'F' }] } });
});

test('a search List below a repeating element given `_count` is still priced at its page', async () => {
  const f = data();
  const query = '{ Patient(id: "p") { link(_count: 1) { other { resource { ... on Patient { ObservationList(_reference: subject, _count: 600) { id } } } } } } }';
  const result = await door.execute({ query }, f.context());
  expect(result.errors?.[0].message).toMatch(/cost is \d+, over the limit of 500/);
  expect(f.calls).toEqual([]);
});
