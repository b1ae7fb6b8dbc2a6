import { parse } from 'graphql';
import { DocumentCache } from '../../src/graphql/documentCache';
import { GraphqlDoor } from '../../src/graphql/graphqlDoor';
import { fakeSource } from './fakeSource';

/** `$graphql` keeps parsed and validated documents per schema, bounded. */
test('keeps documents per schema, evicts the least recently used, and skips long queries', () => {
  const cache = new DocumentCache(2, 20);
  const a = parse('{ a }');
  const b = parse('{ b }');
  cache.set('', '{ a }', a);
  cache.set('', '{ b }', b);
  expect(cache.get('Patient', '{ a }')).toBeUndefined();
  expect(cache.get('', '{ a }')).toBe(a);
  cache.set('', '{ c }', parse('{ c }'));
  expect(cache.get('', '{ b }')).toBeUndefined();
  expect(cache.get('', '{ a }')).toBe(a);
  cache.set('', `{ ${'x '.repeat(20)}}`, parse(`{ ${'x '.repeat(20)}}`));
  expect(cache.get('', `{ ${'x '.repeat(20)}}`)).toBeUndefined();
});

test('the same query text is checked against the schema it runs on, and runs with each request’s variables', async () => {
  const door = new GraphqlDoor({ limits: { maxDepth: 15, maxAliases: 50, maxCost: 50_000 }, introspection: true, sandbox: false });
  const patients = ['a', 'b'].map((id) => ({ resourceType: 'Patient', id, gender: id === 'a' ? 'female' : 'male' }));
  const data = fakeSource(patients);
  for (let i = 0; i < 2; i++) {
    expect((await door.execute({ query: '{ gender }' }, data.context())).errors?.[0].message).toMatch(/Cannot query field "gender" on type "Query"/);
    expect((await door.execute({ query: '{ gender }' }, data.context(), patients[1])).data).toEqual({ gender: 'male' });
  }
  const byId = 'query ($id: ID!) { Patient(id: $id) { gender } }';
  expect((await door.execute({ query: byId, variables: { id: 'a' } }, data.context())).data).toEqual({ Patient: { gender: 'female' } });
  expect((await door.execute({ query: byId, variables: { id: 'b' } }, data.context())).data).toEqual({ Patient: { gender: 'male' } });
});
