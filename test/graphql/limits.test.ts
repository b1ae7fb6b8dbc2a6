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
