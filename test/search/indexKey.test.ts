import { indexKey } from '../../src/search/indexKey';
import { createTestDatabase, type TestDatabase } from '../support/testDatabase';

let database: TestDatabase;
beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(() => database.drop());

test('index keys computed in TypeScript equal those the migration computes in SQL', async () => {
  const cases: [string, string, string][] = [
    ['aggregated', 'Patient', 'name'],
    ['3f1c2d9e-8b7a-4c6d-9e0f-1a2b3c4d5e6f', 'Observation', 'code'],
    ['ep-zoë', 'Observation', 'subject:identifier'],
  ];
  for (const [store, type, param] of cases) {
    const [row] = await database.db.prisma.$queryRawUnsafe<{ key: bigint }[]>('SELECT search_index_key($1, $2, $3) AS key', store, type, param);
    expect(indexKey(store, type, param)).toBe(String(row.key));
  }
  expect(indexKey('a', 'Patient', 'name')).not.toBe(indexKey('b', 'Patient', 'name'));
});
