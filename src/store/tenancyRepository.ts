import { randomBytes } from 'node:crypto';
import type { TokenFamily } from '../access/caller';
import { defaultScopes, isScopeToken } from '../access/scopes';
import { generateSecret, hashSecret, unmatchableHash, verifySecret } from '../access/secrets';
import { badRequest, notFound } from '../fhir/outcome';
import type { FhirVersion } from '../fhir/types';
import type { PrismaClient } from '../generated/prisma/client';

/**
 * Customers, their endpoints (one per inbound feed) and their API clients. Inputs are validated here, so
 * every door (admin REST today, GraphQL mutations later) refuses the same things with the same 4xx outcome.
 */
export type ClientFamily = TokenFamily;
export const CLIENT_FAMILIES: readonly ClientFamily[] = ['fhir', 'legacy'];
export const FHIR_VERSIONS: readonly FhirVersion[] = ['R4', 'STU3'];

export interface CustomerRecord {
  id: string;
  name: string;
  createdAt: Date;
}

export interface EndpointRecord {
  id: string;
  customerId: string;
  fhirVersion: FhirVersion;
  name: string | null;
  /** `Organization/<id>`: the source organisation of resources whose patient names none (DESIGN §3.7). */
  defaultSourceOrg: string | null;
  createdAt: Date;
}

export interface ClientRecord {
  clientId: string;
  customerId: string | null;
  family: ClientFamily;
  name: string | null;
  scopes: string[];
  createdAt: Date;
  revokedAt: Date | null;
}

/** A client as just created: the only time its secret exists in plain text. */
export interface NewClient extends ClientRecord {
  clientSecret: string;
}

export interface NewEndpoint {
  customerId: string;
  fhirVersion: FhirVersion;
  name?: string;
  defaultSourceOrg?: string;
}

export interface NewClientInput {
  customerId: string;
  family: ClientFamily;
  name?: string;
  /** Defaults to everything the family offers (see access/scopes). */
  scopes?: string[];
}

type TenancyPrisma = Pick<PrismaClient, 'customer' | 'endpoint' | 'apiClient'>;

// Lower-case RFC 4648 base32: URL-safe, unambiguous when read aloud, and valid inside FHIR ids.
const ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567';
const MAX_NAME = 200;
const ORGANIZATION_REFERENCE = /^Organization\/[A-Za-z0-9\-.]{1,64}$/;

/** `<prefix>-` + 16 base32 characters (80 random bits); hyphens keep ids valid FHIR ids should they ever become one. */
function newId(prefix: string): string {
  const bytes = randomBytes(10);
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += ALPHABET[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  return `${prefix}-${out}`;
}

function requiredName(value: unknown, field: string): string {
  if (typeof value !== 'string' || value.trim() === '') throw badRequest(`'${field}' must be a non-empty string`, field);
  return optionalName(value, field) as string;
}

function optionalName(value: unknown, field: string): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'string' || value.trim() === '') throw badRequest(`'${field}' must be a non-empty string when given`, field);
  const trimmed = value.trim();
  if (trimmed.length > MAX_NAME) throw badRequest(`'${field}' must be at most ${MAX_NAME} characters`, field);
  return trimmed;
}

function toEndpoint(row: { id: string; customerId: string; fhirVersion: string; name: string | null; defaultSourceOrg: string | null; createdAt: Date }): EndpointRecord {
  return { ...row, fhirVersion: row.fhirVersion as FhirVersion };
}

function toClient(row: { id: string; customerId: string | null; family: string; name: string | null; scopes: string; createdAt: Date; revokedAt: Date | null }): ClientRecord {
  return {
    clientId: row.id,
    customerId: row.customerId,
    family: row.family as ClientFamily,
    name: row.name,
    scopes: row.scopes.split(' ').filter((s) => s !== ''),
    createdAt: row.createdAt,
    revokedAt: row.revokedAt,
  };
}

const CUSTOMER = { id: true, name: true, createdAt: true } as const;
const CLIENT = { id: true, customerId: true, family: true, name: true, scopes: true, createdAt: true, revokedAt: true } as const;
const ORDER = [{ createdAt: 'asc' as const }, { id: 'asc' as const }];

export class TenancyRepository {
  private readonly revocationListeners: ((clientId: string) => Promise<void> | void)[] = [];

  constructor(private readonly prisma: TenancyPrisma) {}

  /** `listener` learns of each client this repository revokes, once the revocation is committed. */
  onClientRevoked(listener: (clientId: string) => Promise<void> | void): void {
    this.revocationListeners.push(listener);
  }

  async createCustomer(input: { name: string }): Promise<CustomerRecord> {
    const name = requiredName(input.name, 'name');
    return this.prisma.customer.create({ data: { id: newId('cus'), name }, select: CUSTOMER });
  }

  listCustomers(): Promise<CustomerRecord[]> {
    return this.prisma.customer.findMany({ select: CUSTOMER, orderBy: ORDER });
  }

  getCustomer(id: string): Promise<CustomerRecord | null> {
    return this.prisma.customer.findUnique({ where: { id }, select: CUSTOMER });
  }

  async createEndpoint(input: NewEndpoint): Promise<EndpointRecord> {
    if (!FHIR_VERSIONS.includes(input.fhirVersion)) {
      throw badRequest(`'fhirVersion' must be one of ${FHIR_VERSIONS.join(', ')}`, 'fhirVersion');
    }
    const name = optionalName(input.name, 'name');
    const source = input.defaultSourceOrg ?? null;
    if (source !== null && (typeof source !== 'string' || !ORGANIZATION_REFERENCE.test(source))) {
      throw badRequest(`'defaultSourceOrg' must be a reference of the form Organization/<id>`, 'defaultSourceOrg');
    }
    await this.requireCustomer(input.customerId);
    const row = await this.prisma.endpoint.create({
      data: { id: newId('ep'), customerId: input.customerId, fhirVersion: input.fhirVersion, name, defaultSourceOrg: source },
    });
    return toEndpoint(row);
  }

  async getEndpoint(id: string): Promise<EndpointRecord | null> {
    const row = await this.prisma.endpoint.findUnique({ where: { id } });
    return row && toEndpoint(row);
  }

  /** All endpoints, or one customer's; an unknown customer is a 404 rather than an empty list. */
  async listEndpoints(customerId?: string): Promise<EndpointRecord[]> {
    if (customerId !== undefined) await this.requireCustomer(customerId);
    const rows = await this.prisma.endpoint.findMany({ where: customerId === undefined ? {} : { customerId }, orderBy: ORDER });
    return rows.map(toEndpoint);
  }

  async createClient(input: NewClientInput): Promise<NewClient> {
    if (!CLIENT_FAMILIES.includes(input.family)) throw badRequest(`'family' must be one of ${CLIENT_FAMILIES.join(', ')}`, 'family');
    const name = optionalName(input.name, 'name');
    const scopes = input.scopes ?? defaultScopes(input.family);
    if (!Array.isArray(scopes) || scopes.some((s) => typeof s !== 'string' || !isScopeToken(s))) {
      throw badRequest(`'scopes' must be scope tokens (RFC 6749 §3.3), e.g. system/*.cruds`, 'scopes');
    }
    await this.requireCustomer(input.customerId);
    const clientSecret = generateSecret();
    const row = await this.prisma.apiClient.create({
      data: {
        id: newId('cli'),
        customerId: input.customerId,
        family: input.family,
        secretHash: await hashSecret(clientSecret),
        scopes: [...new Set(scopes)].join(' '),
        name,
      },
      select: CLIENT,
    });
    return { ...toClient(row), clientSecret };
  }

  async findClient(clientId: string): Promise<ClientRecord | null> {
    const row = await this.prisma.apiClient.findUnique({ where: { id: clientId }, select: CLIENT });
    return row && toClient(row);
  }

  /** All clients, or one customer's (404 for an unknown customer), revoked ones included. */
  async listClients(customerId?: string): Promise<ClientRecord[]> {
    if (customerId !== undefined) await this.requireCustomer(customerId);
    const rows = await this.prisma.apiClient.findMany({ where: customerId === undefined ? {} : { customerId }, select: CLIENT, orderBy: ORDER });
    return rows.map(toClient);
  }

  /**
   * The client when `secret` is its secret (revoked clients included: the caller decides what revocation
   * means), else null. Unknown ids cost the same hash check, so timing does not reveal which ids exist.
   */
  async authenticateClient(clientId: string, secret: string): Promise<ClientRecord | null> {
    const row = await this.prisma.apiClient.findUnique({ where: { id: clientId }, select: { ...CLIENT, secretHash: true } });
    const matches = await verifySecret(secret, row?.secretHash ?? (await unmatchableHash()));
    return row && matches ? toClient(row) : null;
  }

  /** Revokes a client: it can get no new tokens. Revoking twice is harmless and keeps the first instant. */
  async revokeClient(clientId: string): Promise<ClientRecord> {
    await this.prisma.apiClient.updateMany({ where: { id: clientId, revokedAt: null }, data: { revokedAt: new Date() } });
    const client = await this.findClient(clientId);
    if (!client) throw notFound(`No API client '${clientId}'`);
    for (const listener of this.revocationListeners) await listener(clientId);
    return client;
  }

  private async requireCustomer(customerId: unknown): Promise<void> {
    if (typeof customerId !== 'string' || customerId === '') throw badRequest(`'customerId' must be a customer id`, 'customerId');
    if (!(await this.getCustomer(customerId))) throw notFound(`No customer '${customerId}'`);
  }
}
