import { parseFhirJson, stringifyFhirJson } from '../../src/fhir/losslessJson';
import type { Resource } from '../../src/fhir/types';
import { GraphqlDoor } from '../../src/graphql/graphqlDoor';
import { fakeSource } from './fakeSource';

/** The data flattening directives, checked against the worked examples of graphql.html#flattening. */
const patient = {
  resourceType: 'Patient',
  id: 'example',
  identifier: [{ system: 'urn:oid:1.2.36.146.595.217.0.1', value: '12345' }],
  active: true,
  name: [
    { use: 'official', family: 'Chalmers', given: ['Peter', 'James'] },
    { use: 'usual', given: ['Jim'] },
    { use: 'maiden', family: 'Windsor', given: ['Peter', 'James'] },
  ],
};
const door = new GraphqlDoor({ limits: { maxDepth: 15, maxAliases: 50, maxCost: 50_000 }, introspection: true, sandbox: false });
const run = (selection: string) => door.execute({ query: `{ Patient(id: "example") ${selection} }` }, fakeSource([patient]).context());

test('@flatten puts the children of a repeating field in the parent as lists', async () => {
  const { data } = await run('{ identifier @flatten { system value } active name @flatten { text given family } }');
  expect(data?.Patient).toEqual({
    system: ['urn:oid:1.2.36.146.595.217.0.1'],
    value: ['12345'],
    active: true,
    given: ['Peter', 'James', 'Jim', 'Peter', 'James'],
    family: ['Chalmers', 'Windsor'],
  });
});

test('@first takes the first element of each source list before flattening', async () => {
  const { data } = await run('{ identifier @flatten { system value } active name @flatten { text given @first family } }');
  expect((data?.Patient as Record<string, unknown>).given).toEqual(['Peter', 'Jim', 'Peter']);
});

test('@singleton collates to one value instead of a list', async () => {
  const { data, errors } = await run('{ identifier @flatten { system @singleton value @singleton } active name @flatten @first { text given family @singleton } }');
  expect(errors).toBeUndefined();
  expect(data?.Patient).toEqual({ system: 'urn:oid:1.2.36.146.595.217.0.1', value: '12345', active: true, given: ['Peter', 'James'], family: 'Chalmers' });
});

test('@singleton over several values is an error', async () => {
  const { errors } = await run('{ name @flatten { family @singleton } }');
  expect(errors?.map((e) => e.message)).toEqual(["@singleton: 'family' has more than one value"]);
});

test('@slice(path: "use") names the flattened children by an element that is not selected', async () => {
  const { data } = await run('{ identifier @flatten { system value } active name @flatten @slice(path: "use") { given family @singleton } }');
  expect(data?.Patient).toEqual({
    system: ['urn:oid:1.2.36.146.595.217.0.1'],
    value: ['12345'],
    active: true,
    'given.official': ['Peter', 'James'],
    'family.official': 'Chalmers',
    'given.usual': ['Jim'],
    'given.maiden': ['Peter', 'James'],
    'family.maiden': 'Windsor',
  });
});

test('@slice(path: "$index") names them by position', async () => {
  const { data } = await run('{ name @slice(path: "$index") @flatten { given @first @singleton family } }');
  expect(data?.Patient).toEqual({ 'given.0': 'Peter', 'family.0': ['Chalmers'], 'given.1': 'Jim', 'given.2': 'Peter', 'family.2': ['Windsor'] });
});

test('@slice without @flatten suffixes the field itself', async () => {
  const { data } = await run('{ name @slice(path: "use") { family } }');
  expect(data?.Patient).toEqual({ 'name.official': { family: 'Chalmers' }, 'name.usual': { family: null }, 'name.maiden': { family: 'Windsor' } });
});

test('decimals under @flatten keep their digits and stay values (a decimal is not an object to flatten)', async () => {
  const observation = parseFhirJson(
    '{"resourceType":"Observation","id":"o","status":"final","code":{"text":"panel"},"valueQuantity":{"value":1.50,"unit":"mg"},' +
      '"component":[{"code":{"text":"a"},"valueQuantity":{"value":2.10}},{"code":{"text":"b"},"valueQuantity":{"value":3.0}}]}',
  ) as Resource;
  const query = '{ Observation(id: "o") { valueQuantity { value @flatten unit } component @flatten { valueQuantity @flatten { value } } } }';
  const result = await door.execute({ query }, fakeSource([observation]).context());
  expect(result.errors).toBeUndefined();
  expect(stringifyFhirJson(result.data)).toBe('{"Observation":{"valueQuantity":{"unit":"mg"},"value":[2.10,3.0]}}');
});
