import { cloneFhir } from '../../src/fhir/losslessJson';
import type { Bundle, Resource } from '../../src/fhir/types';
import type { GraphqlDataSource } from '../../src/graphql/dataSource';
import { createLoaders } from '../../src/graphql/loaders';
import type { GraphqlContext } from '../../src/graphql/context';

/**
 * An in-memory data source for unit tests of the schema's shape and directives (the HTTP tests use the
 * real server). Search understands `_id`, `_count` and the reference parameters listed here; every call is
 * recorded so tests can count them.
 */
const REFERENCE_FIELDS: Record<string, string> = { subject: 'subject', patient: 'subject', medication: 'medicationReference', encounter: 'encounter' };

export function fakeSource(resources: Resource[]) {
  const calls: { type: string; params: [string, string][] }[] = [];
  const source: GraphqlDataSource = {
    async read(type, id) {
      const found = resources.find((r) => r.resourceType === type && r.id === id);
      if (!found) throw new Error(`${type}/${id} not found`);
      return cloneFhir(found);
    },
    async search(type, params) {
      calls.push({ type, params });
      let matches = resources.filter((r) => r.resourceType === type);
      let count = 20;
      for (const [name, value] of params) {
        const values = value.split(',');
        if (name === '_count') count = Number(value);
        else if (name === '_id') matches = matches.filter((r) => values.includes(r.id as string));
        else if (REFERENCE_FIELDS[name]) matches = matches.filter((r) => values.includes((r[REFERENCE_FIELDS[name]] as { reference?: string } | undefined)?.reference ?? ''));
      }
      const bundle: Bundle = {
        resourceType: 'Bundle',
        type: 'searchset',
        entry: matches.slice(0, count).map((r) => ({ resource: cloneFhir(r), search: { mode: 'match' } })),
      };
      if (matches.length > count) bundle.link = [{ relation: 'next', url: `http://fake/${type}?_cursor=next` }];
      return bundle;
    },
    // Recorded as the `_id` search the real service runs.
    async readMany(type, ids) {
      const bundle = await source.search(type, [
        ['_id', ids.join(',')],
        ['_count', String(ids.length)],
      ]);
      return (bundle.entry ?? []).map((e) => e.resource as Resource);
    },
    create: async (_t, r) => r,
    update: async (_t, _id, r) => r,
    delete: async () => undefined,
  };
  const context = (): GraphqlContext => ({ source, loaders: createLoaders(source), origin: new WeakMap() });
  return { source, calls, context };
}
