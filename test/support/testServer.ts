import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { DestinationStream } from 'pino';
import { TokenService } from '../../src/access/tokens';
import { buildApp } from '../../src/app';
import { loadConfig } from '../../src/config';
import type { FhirVersion } from '../../src/fhir/types';
import { openDatabase } from '../../src/store/db';
import { TenancyRepository } from '../../src/store/tenancyRepository';
import { createTestDatabase, type TestDatabase } from './testDatabase';

/** One customer with one endpoint and one fhir-family client, ready to call. */
export interface Tenant {
  customerId: string;
  endpointId: string;
  clientId: string;
  clientSecret: string;
  token: string;
  /** Absolute FHIR base of the endpoint. */
  baseUrl: string;
  /** `fetch` with the tenant's bearer token and FHIR JSON content type. */
  fetch(pathOrUrl: string, init?: RequestInit): Promise<Response>;
}

export interface TestServer {
  url: string;
  app: FastifyInstance;
  database: TestDatabase;
  adminToken: string;
  /** The server's data folder (its signing keys live there). */
  dataDir: string;
  /** The server's own token service: tests mint tokens for subjects whose door is elsewhere. */
  tokens: TokenService;
  admin<T = Record<string, unknown>>(method: string, path: string, body?: unknown): Promise<T>;
  provision(options?: { fhirVersion?: FhirVersion; name?: string; defaultSourceOrg?: string }): Promise<Tenant>;
  /** Resolves when every write so far is visible on the aggregated endpoint. */
  waitForAggregation(): Promise<void>;
  /** `fetch` on the aggregated endpoint with a tenant's token. */
  aggregated(tenant: Tenant, pathOrUrl: string, init?: RequestInit): Promise<Response>;
  /** A token for an extra client of an existing customer. */
  token(clientId: string, clientSecret: string, family?: 'fhir' | 'legacy'): Promise<string>;
  close(): Promise<void>;
}

/** The real HTTP server on a random local port, over a fresh test database. */
export async function startTestServer(
  env: Record<string, string> = {},
  options: { queryEvents?: boolean; logStream?: DestinationStream; replicaUrl?: string; sharedDatabase?: TestDatabase } = {},
): Promise<TestServer> {
  const database = options.sharedDatabase ? await secondServerOn(options.sharedDatabase) : await createTestDatabase(options);
  const dataDir = await mkdtemp(path.join(tmpdir(), 'tributary-test-'));
  const adminToken = `admin-${Math.random().toString(36).slice(2)}`;
  const config = { ...loadConfig({ PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'silent', DATA_DIR: dataDir, ...(process.env.CITUS ? { CITUS: process.env.CITUS } : {}), ...env }) };
  // CITUS as the database was made (testDatabase.ts) shapes the SQL too (SearchService's indexDriven).
  // TOKEN_TTL_SECONDS as the server reads it: a long test (the leak matrix) outlives the default 5 minutes.
  const tokens = await TokenService.create({
    dataDir,
    publicUrl: 'http://127.0.0.1',
    longestTtlSeconds: config.breakGlassSeconds,
    env: env.TOKEN_TTL_SECONDS ? { TOKEN_TTL_SECONDS: env.TOKEN_TTL_SECONDS } : {},
  });
  // A server that refuses to start (a configuration the database refuses) leaves nothing open behind it.
  const app = await buildApp({ config, db: database.db, tenancy: new TenancyRepository(database.db.prisma), tokens, adminToken, logStream: options.logStream }).catch(
    async (err: unknown) => {
      await database.drop();
      await rm(dataDir, { recursive: true, force: true });
      throw err;
    },
  );
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  const url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  // Links and Location headers must point at the real port.
  config.publicUrl = url;

  const admin = async <T>(method: string, p: string, body?: unknown): Promise<T> => {
    const res = await fetch(`${url}${p}`, {
      method,
      headers: { authorization: `Bearer ${adminToken}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const json = await res.json();
    if (!res.ok) throw new Error(`${method} ${p} → ${res.status}: ${JSON.stringify(json)}`);
    return json as T;
  };

  const token = async (clientId: string, clientSecret: string, family: 'fhir' | 'legacy' = 'fhir') => {
    const res = await fetch(`${url}${family === 'fhir' ? '' : '/legacy'}/oauth2/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', client_id: clientId, client_secret: clientSecret }).toString(),
    });
    const json = (await res.json()) as { access_token?: string };
    if (!res.ok || !json.access_token) throw new Error(`token → ${res.status}: ${JSON.stringify(json)}`);
    return json.access_token;
  };

  const provision = async (options: { fhirVersion?: FhirVersion; name?: string; defaultSourceOrg?: string } = {}): Promise<Tenant> => {
    const customer = await admin<{ id: string }>('POST', '/admin/customers', { name: options.name ?? 'Test customer' });
    const endpoint = await admin<{ id: string }>('POST', '/admin/endpoints', {
      customerId: customer.id,
      fhirVersion: options.fhirVersion ?? 'R4',
      ...(options.defaultSourceOrg ? { defaultSourceOrg: options.defaultSourceOrg } : {}),
    });
    const client = await admin<{ client_id: string; client_secret: string }>('POST', '/admin/clients', { customerId: customer.id, family: 'fhir' });
    const bearer = await token(client.client_id, client.client_secret);
    const baseUrl = `${url}/fhir/customer/${endpoint.id}`;
    return {
      customerId: customer.id,
      endpointId: endpoint.id,
      clientId: client.client_id,
      clientSecret: client.client_secret,
      token: bearer,
      baseUrl,
      fetch: (p, init = {}) =>
        fetch(p.startsWith('http') ? p : `${baseUrl}/${p.replace(/^\//, '')}`, {
          ...init,
          headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/fhir+json', ...(init.headers as Record<string, string>) },
        }),
    };
  };

  return {
    url,
    app,
    database,
    adminToken,
    dataDir,
    tokens,
    admin,
    provision,
    async waitForAggregation() {
      await admin('POST', '/admin/aggregation/wait?timeoutMs=30000');
    },
    aggregated: (tenant, p, init = {}) =>
      fetch(p.startsWith('http') ? p : `${url}/fhir/aggregated/${p.replace(/^\//, '')}`, {
        ...init,
        headers: { authorization: `Bearer ${tenant.token}`, 'content-type': 'application/fhir+json', ...(init.headers as Record<string, string>) },
      }),
    token,
    async close() {
      await app.close();
      await database.drop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * Another server's view of a test database (`sharedDatabase`): on PostgreSQL a connection pool of its own, as a
 * second server process would have; the embedded store is one connection, so the same one. Closing it leaves
 * the database to its owner.
 */
async function secondServerOn(shared: TestDatabase): Promise<TestDatabase> {
  if (!shared.url) return { db: shared.db, drop: async () => undefined };
  const db = await openDatabase({ databaseUrl: shared.url, poolSize: 5 });
  return { db, url: shared.url, drop: () => db.close() };
}

/** The body of a refusal, as the validation tests read it. */
export interface OutcomeBody {
  resourceType: string;
  issue: { severity: string; code: string; diagnostics: string; expression?: string[] }[];
}

/** A server with one R4 and one STU3 customer endpoint: what every test of a rule applied to both versions needs. */
export async function startServerWithR4AndStu3(stu3Options: { defaultSourceOrg?: string } = {}): Promise<{ server: TestServer; r4: Tenant; stu3: Tenant }> {
  const server = await startTestServer();
  return { server, r4: await server.provision(), stu3: await server.provision({ fhirVersion: 'STU3', ...stu3Options }) };
}

/** PUTs `resource` to the tenant's endpoint under its own id; anything but a success throws with the answer's body. */
export async function putResource(t: Tenant, resource: { resourceType: string; id: string; [element: string]: unknown }): Promise<void> {
  const res = await t.fetch(`${resource.resourceType}/${resource.id}`, { method: 'PUT', body: JSON.stringify(resource) });
  if (res.status >= 300) throw new Error(`${resource.resourceType}/${resource.id}: ${res.status} ${await res.text()}`);
}

/** The aggregated id of one of the tenant's resources, read from its `$aggregation-status`; throws when it is not aggregated. */
export async function aggregatedId(t: Tenant, type: string, id: string): Promise<string> {
  const outcome = (await (await t.fetch(`${type}/${id}/$aggregation-status`)).json()) as { issue?: { diagnostics?: string }[] };
  const m = new RegExp(`is aggregated as ${type}/([^ .,;]+)`).exec(outcome.issue?.[0]?.diagnostics ?? '');
  if (!m) throw new Error(`${type}/${id} was not aggregated: ${JSON.stringify(outcome)}`);
  return m[1];
}
