import type { TokenFamily } from '../access/caller';
import type { ClientJwks } from '../access/clientJwks';
import { generateSecret, hashSecret, unmatchableHash, verifySecret } from '../access/secrets';
import type { FhirVersion } from '../fhir/types';
import type { PrismaClient } from '../generated/prisma/client';
import { newId } from './newId';
import { OrganizationRepository } from './organizationRepository';

/**
 * Customers, their endpoints (one per inbound feed) and their API clients, as stored. Inputs arrive
 * validated: the admin service (src/admin/adminService.ts) checks them once for every door.
 */
export type ClientFamily = TokenFamily;
export const CLIENT_FAMILIES: readonly ClientFamily[] = ['fhir', 'legacy'];
export const FHIR_VERSIONS: readonly FhirVersion[] = ['R4', 'STU3'];

export interface CustomerRecord {
  id: string;
  name: string;
  /** The organisation its clients act for unless told otherwise (created with the customer). */
  defaultOrganizationId: string | null;
  createdAt: Date;
}

export interface EndpointRecord {
  id: string;
  customerId: string;
  fhirVersion: FhirVersion;
  name: string | null;
  /** `Organization/<id>`: the source organisation of resources whose patient names none (DESIGN §3.7). */
  defaultSourceOrg: string | null;
  /** A disabled endpoint's FHIR requests are refused; what it sent stays aggregated. */
  enabled: boolean;
  createdAt: Date;
}

export interface ClientRecord {
  clientId: string;
  customerId: string | null;
  family: ClientFamily;
  name: string | null;
  scopes: string[];
  /** The organisation it acts for (token claim `org`). */
  organizationId: string | null;
  /** The one team (claim `team`) or practitioner (claim `practitioner`) of it the client is bound to, if any. */
  teamId: string | null;
  practitionerId: string | null;
  createdAt: Date;
  revokedAt: Date | null;
  /** The public keys of its private_key_jwt assertions, if it registered any. */
  jwks: ClientJwks | null;
}

/** A client as just created: the only time its secret exists in plain text. */
export interface NewClient extends ClientRecord {
  clientSecret: string;
}

export interface NewEndpoint {
  customerId: string;
  fhirVersion: FhirVersion;
  name?: string | null;
  defaultSourceOrg?: string | null;
}

/** The fields to change; absent ones are left as they are, `null` clears. */
export interface EndpointChanges {
  name?: string | null;
  defaultSourceOrg?: string | null;
  enabled?: boolean;
}

export interface NewClientInput {
  customerId: string;
  organizationId: string;
  teamId: string | null;
  practitionerId: string | null;
  family: ClientFamily;
  name: string | null;
  scopes: string[];
  jwks?: ClientJwks | null;
}

type TenancyPrisma = Pick<PrismaClient, 'customer' | 'endpoint' | 'apiClient' | 'organization' | 'team' | 'practitioner' | 'teamMember' | '$transaction'>;

function toEndpoint(row: {
  id: string;
  customerId: string;
  fhirVersion: string;
  name: string | null;
  defaultSourceOrg: string | null;
  enabled: boolean;
  createdAt: Date;
}): EndpointRecord {
  return { ...row, fhirVersion: row.fhirVersion as FhirVersion };
}

interface ClientRow {
  id: string;
  customerId: string | null;
  family: string;
  name: string | null;
  scopes: string;
  organizationId: string | null;
  teamId: string | null;
  practitionerId: string | null;
  createdAt: Date;
  revokedAt: Date | null;
  jwks: unknown;
}

function toClient(row: ClientRow): ClientRecord {
  return {
    clientId: row.id,
    customerId: row.customerId,
    family: row.family as ClientFamily,
    name: row.name,
    scopes: row.scopes.split(' ').filter((s) => s !== ''),
    organizationId: row.organizationId,
    teamId: row.teamId,
    practitionerId: row.practitionerId,
    createdAt: row.createdAt,
    revokedAt: row.revokedAt,
    jwks: (row.jwks as ClientJwks | null) ?? null,
  };
}

const CUSTOMER = { id: true, name: true, defaultOrganizationId: true, createdAt: true } as const;
const ENDPOINT = { id: true, customerId: true, fhirVersion: true, name: true, defaultSourceOrg: true, enabled: true, createdAt: true } as const;
const CLIENT = {
  id: true,
  customerId: true,
  family: true,
  name: true,
  scopes: true,
  organizationId: true,
  teamId: true,
  practitionerId: true,
  createdAt: true,
  revokedAt: true,
  jwks: true,
} as const;
const ORDER = [{ createdAt: 'asc' as const }, { id: 'asc' as const }];

export class TenancyRepository {
  private readonly revocationListeners: ((clientId: string) => Promise<void> | void)[] = [];
  /** Organisations, teams, practitioners and team membership. */
  readonly organizations: OrganizationRepository;

  constructor(private readonly prisma: TenancyPrisma) {
    this.organizations = new OrganizationRepository(prisma, this.revocationListeners);
  }

  /**
   * `listener` learns of each client this repository revokes, and of each organisation, team and
   * practitioner it disables, once that is committed: from then on their tokens are refused.
   */
  onClientRevoked(listener: (id: string) => Promise<void> | void): void {
    this.revocationListeners.push(listener);
  }

  /** A customer with its default organisation and that organisation's default team. */
  async createCustomer(input: { name: string }): Promise<CustomerRecord> {
    const id = newId('cus');
    const { writes } = this.organizations.organizationWrites({ customerId: id, name: input.name }, true);
    await this.prisma.$transaction([this.prisma.customer.create({ data: { id, name: input.name }, select: { id: true } }), ...writes]);
    return (await this.getCustomer(id)) as CustomerRecord;
  }

  listCustomers(): Promise<CustomerRecord[]> {
    return this.prisma.customer.findMany({ select: CUSTOMER, orderBy: ORDER });
  }

  getCustomer(id: string): Promise<CustomerRecord | null> {
    return this.prisma.customer.findUnique({ where: { id }, select: CUSTOMER });
  }

  async createEndpoint(input: NewEndpoint): Promise<EndpointRecord> {
    const row = await this.prisma.endpoint.create({
      data: { id: newId('ep'), customerId: input.customerId, fhirVersion: input.fhirVersion, name: input.name, defaultSourceOrg: input.defaultSourceOrg },
      select: ENDPOINT,
    });
    return toEndpoint(row);
  }

  /** Applies `changes`; null when there is no such endpoint. */
  async updateEndpoint(id: string, changes: EndpointChanges): Promise<EndpointRecord | null> {
    const { count } = await this.prisma.endpoint.updateMany({ where: { id }, data: changes });
    return count === 0 ? null : this.getEndpoint(id);
  }

  async getEndpoint(id: string): Promise<EndpointRecord | null> {
    const row = await this.prisma.endpoint.findUnique({ where: { id }, select: ENDPOINT });
    return row && toEndpoint(row);
  }

  /** All endpoints, or one customer's; not the organisations' internal native stores (src/native/nativeStore.ts). */
  async listEndpoints(customerId?: string): Promise<EndpointRecord[]> {
    const where = { ...(customerId === undefined ? {} : { customerId }), NOT: { id: { startsWith: 'native-' } } };
    const rows = await this.prisma.endpoint.findMany({ where, select: ENDPOINT, orderBy: ORDER });
    return rows.map(toEndpoint);
  }

  async createClient(input: NewClientInput): Promise<NewClient> {
    const clientSecret = generateSecret();
    const row = await this.prisma.apiClient.create({
      data: {
        id: newId('cli'),
        customerId: input.customerId,
        organizationId: input.organizationId,
        teamId: input.teamId,
        practitionerId: input.practitionerId,
        family: input.family,
        secretHash: await hashSecret(clientSecret),
        scopes: [...new Set(input.scopes)].join(' '),
        name: input.name,
        ...(input.jwks ? { jwks: input.jwks as object } : {}),
      },
      select: CLIENT,
    });
    return { ...toClient(row), clientSecret };
  }

  async findClient(clientId: string): Promise<ClientRecord | null> {
    if (!storableId(clientId)) return null;
    const row = await this.prisma.apiClient.findUnique({ where: { id: clientId }, select: CLIENT });
    return row && toClient(row);
  }

  /** All clients, or one customer's, revoked ones included. */
  async listClients(customerId?: string): Promise<ClientRecord[]> {
    const rows = await this.prisma.apiClient.findMany({ where: customerId === undefined ? {} : { customerId }, select: CLIENT, orderBy: ORDER });
    return rows.map(toClient);
  }

  /**
   * The client when `secret` is its secret (revoked clients included: the caller decides what revocation
   * means), else null. Unknown ids cost the same hash check, so timing does not reveal which ids exist.
   */
  async authenticateClient(clientId: string, secret: string): Promise<ClientRecord | null> {
    const row = storableId(clientId) ? await this.prisma.apiClient.findUnique({ where: { id: clientId }, select: { ...CLIENT, secretHash: true } }) : null;
    const matches = await verifySecret(secret, row?.secretHash ?? (await unmatchableHash()));
    return row && matches ? toClient(row) : null;
  }

  /** Revokes a client: it can get no new tokens. Revoking twice is harmless and keeps the first instant; null for an unknown id. */
  async revokeClient(clientId: string): Promise<ClientRecord | null> {
    await this.prisma.apiClient.updateMany({ where: { id: clientId, revokedAt: null }, data: { revokedAt: new Date() } });
    const client = await this.findClient(clientId);
    if (client) for (const listener of this.revocationListeners) await listener(clientId);
    return client;
  }

  /**
   * Gives an unrevoked client a new secret; the old one stops working with this statement, since the token
   * endpoint reads the hash on every request. Null when there is no such unrevoked client.
   */
  async rotateSecret(clientId: string): Promise<NewClient | null> {
    const clientSecret = generateSecret();
    const { count } = await this.prisma.apiClient.updateMany({ where: { id: clientId, revokedAt: null }, data: { secretHash: await hashSecret(clientSecret) } });
    if (count === 0) return null;
    const client = await this.findClient(clientId);
    return client && { ...client, clientSecret };
  }
}

/** PostgreSQL text cannot hold NUL: a client id with one names no client (and must not reach the driver, which fails). */
function storableId(id: string): boolean {
  return !id.includes('\u0000');
}
