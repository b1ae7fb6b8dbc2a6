import { OperationOutcomeError } from '../../src/fhir/outcome';
import { ResourceRepository } from '../../src/store/resourceRepository';
import { createTestDatabase, type TestDatabase } from '../support/testDatabase';

let t: TestDatabase;
let repo: ResourceRepository;
const STORE = 'ep_repo';

beforeAll(async () => {
  t = await createTestDatabase();
  repo = new ResourceRepository(t.db.sql);
});
afterAll(() => t.drop());

async function statusOf(p: Promise<unknown>): Promise<number> {
  try {
    await p;
  } catch (e) {
    if (e instanceof OperationOutcomeError) return e.status;
    throw e;
  }
  return 200;
}

describe('ResourceRepository', () => {
  test('create assigns an id, version 1 and lastUpdated, and read returns the stored body', async () => {
    const created = await repo.create(STORE, { resourceType: 'Patient', id: 'ignored?', gender: 'female' });
    expect(created.versionId).toBe(1);
    const read = await repo.read(STORE, 'Patient', created.id);
    expect(read.resource).toMatchObject({ resourceType: 'Patient', id: created.id, gender: 'female', meta: { versionId: '1' } });
    expect(read.resource?.meta?.lastUpdated).toBe(created.lastUpdated.toISOString());
  });

  test('update creates a new version and keeps the old one readable by vread', async () => {
    const { stored: v1, created } = await repo.update(STORE, { resourceType: 'Patient', id: 'p-upd', gender: 'male' });
    expect(created).toBe(true);
    const { stored: v2 } = await repo.update(STORE, { resourceType: 'Patient', id: 'p-upd', gender: 'other' });
    expect([v1.versionId, v2.versionId]).toEqual([1, 2]);
    expect((await repo.vread(STORE, 'Patient', 'p-upd', 1)).resource?.gender).toBe('male');
    expect((await repo.read(STORE, 'Patient', 'p-upd')).resource?.gender).toBe('other');
  });

  test('If-Match with a stale version is refused with 412 and changes nothing', async () => {
    await repo.update(STORE, { resourceType: 'Patient', id: 'p-412', gender: 'male' });
    await repo.update(STORE, { resourceType: 'Patient', id: 'p-412', gender: 'female' });
    expect(await statusOf(repo.update(STORE, { resourceType: 'Patient', id: 'p-412', gender: 'other' }, { ifMatch: 1 }))).toBe(412);
    expect((await repo.read(STORE, 'Patient', 'p-412')).versionId).toBe(2);
  });

  test('read after delete is 410, and an update after delete starts a new version', async () => {
    await repo.update(STORE, { resourceType: 'Patient', id: 'p-del' });
    const del = await repo.delete(STORE, 'Patient', 'p-del');
    expect(del?.versionId).toBe(2);
    expect(await statusOf(repo.read(STORE, 'Patient', 'p-del'))).toBe(410);
    expect(await repo.delete(STORE, 'Patient', 'p-del')).toBeUndefined();
    const again = await repo.update(STORE, { resourceType: 'Patient', id: 'p-del' });
    expect(again).toMatchObject({ created: true, stored: { versionId: 3 } });
  });

  test('stores are isolated from each other', async () => {
    await repo.update('ep_other', { resourceType: 'Patient', id: 'p-iso' });
    expect(await statusOf(repo.read(STORE, 'Patient', 'p-iso'))).toBe(404);
  });

  test('history pages newest first with no gaps or duplicates while new versions arrive', async () => {
    for (let i = 0; i < 7; i++) await repo.update('ep_hist', { resourceType: 'Observation', id: 'o1', status: 'final', code: { text: `v${i}` } } as never);
    const seen: number[] = [];
    let page = await repo.history({ store: 'ep_hist', type: 'Observation', id: 'o1' }, { count: 3 });
    seen.push(...page.entries.map((e) => e.versionId));
    await repo.update('ep_hist', { resourceType: 'Observation', id: 'o1', status: 'final' } as never);
    while (page.next) {
      page = await repo.history({ store: 'ep_hist', type: 'Observation', id: 'o1' }, { count: 3, cursor: page.next });
      seen.push(...page.entries.map((e) => e.versionId));
    }
    expect(seen).toEqual([7, 6, 5, 4, 3, 2, 1]);
  });

  test('createMany with an id that exists is a 409 naming it, and creates none of its resources', async () => {
    await repo.createMany(STORE, [{ resourceType: 'Patient', id: 'p-many-1' }]);
    let refusal: unknown;
    try {
      await repo.createMany(STORE, [
        { resourceType: 'Patient', id: 'p-many-2' },
        { resourceType: 'Patient', id: 'p-many-1' },
      ]);
    } catch (e) {
      refusal = e;
    }
    expect(refusal).toBeInstanceOf(OperationOutcomeError);
    expect((refusal as OperationOutcomeError).status).toBe(409);
    expect((refusal as OperationOutcomeError).message).toContain('Patient/p-many-1 already exists');
    expect(await statusOf(repo.read(STORE, 'Patient', 'p-many-2'))).toBe(404);
    expect((await repo.read(STORE, 'Patient', 'p-many-1')).versionId).toBe(1);
  });

  test('concurrent create-on-PUT of one id yields one resource with consecutive versions', async () => {
    if (t.db.kind !== 'postgres') return; // PGlite has one connection: nothing runs concurrently there
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => repo.update(STORE, { resourceType: 'Patient', id: 'p-race', birthDate: `200${i}` })));
    expect(results.filter((r) => r.created)).toHaveLength(1);
    expect(results.map((r) => r.stored.versionId).sort()).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  });
});
