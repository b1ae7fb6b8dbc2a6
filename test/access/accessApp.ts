import Fastify, { type FastifyInstance } from 'fastify';
import { AssertionJtis } from '../../src/access/assertionJtis';
import { TokenService } from '../../src/access/tokens';
import { loadSigningKeys } from '../../src/access/signingKeys';
import { AdminService } from '../../src/admin/adminService';
import { adminRoutes } from '../../src/rest/adminRoutes';
import { oauthRoutes } from '../../src/rest/oauthRoutes';
import { TenancyRepository } from '../../src/store/tenancyRepository';
import { createTestDatabase, type TestDatabase } from '../support/testDatabase';

export const PUBLIC_URL = 'http://tributary.test';
export const ADMIN_TOKEN = 'adm-test-token-0123456789abcdefghijklmnopqrstuvwxyz';

/** A Fastify app with only the access plugins (token endpoints, admin API) over a fresh migrated database. */
export interface AccessApp {
  app: FastifyInstance;
  tenancy: TenancyRepository;
  tokens: TokenService;
  close(): Promise<void>;
}

export async function buildAccessApp(): Promise<AccessApp> {
  const t: TestDatabase = await createTestDatabase();
  const tenancy = new TenancyRepository(t.db.prisma);
  const tokens = new TokenService({ publicUrl: PUBLIC_URL, keys: await loadSigningKeys() });
  const app = Fastify({ logger: false });
  await app.register(oauthRoutes({ tenancy, tokens, jtis: new AssertionJtis(t.db.sql), publicUrl: () => PUBLIC_URL }));
  await app.register(adminRoutes({ admin: new AdminService({ tenancy }), adminToken: ADMIN_TOKEN, publicUrl: PUBLIC_URL }));
  await app.ready();
  return {
    app,
    tenancy,
    tokens,
    async close() {
      await app.close();
      await t.drop();
    },
  };
}
