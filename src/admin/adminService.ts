import { defaultScopes } from '../access/scopes';
import type { IssuedToken, TokenService } from '../access/tokens';
import { auditQueryOf, type AuditRow, type AuditSearch } from '../audit/auditSearch';
import type { Bundle } from '../fhir/types';
import type { BreakGlassEvent } from '../consent/breakGlass';
import type { ConsentInput, ConsentRegistry } from '../consent/consentRegistry';
import type { ConsentRecord } from '../consent/consentResource';
import type { Lag } from '../aggregator/worker';
import type { AggregationReport } from '../aggregator/report';
import { conflict, notFound, OperationOutcomeError, operationOutcome, badRequest } from '../fhir/outcome';
import type { ClientRecord, CustomerRecord, EndpointChanges, EndpointRecord, NewClient, TenancyRepository } from '../store/tenancyRepository';
import {
  booleanField,
  familyField,
  fhirVersionField,
  idField,
  jwksField,
  millisecondsField,
  nameField,
  onlyFields,
  optionalFamily,
  optionalId,
  scopesField,
  sourceOrgField,
  type Untrusted,
} from './adminInput';
import { OrganizationAdmin } from './organizationAdmin';
import { isNativeStore } from '../native/nativeStore';

/**
 * The admin operations — customers, endpoints, clients, consents, aggregation housekeeping — for every door:
 * the admin REST API (and so the CLI) and the GraphQL admin mutations call these methods with what they
 * received, and get plain records or an OperationOutcomeError. All validation is here (adminInput.ts), so the
 * doors cannot drift apart.
 */
export interface AdminServiceDeps {
  tenancy: TenancyRepository;
  grants?: Pick<ConsentRegistry, 'grant' | 'revoke' | 'list' | 'withdrawAll' | 'setFrozen' | 'accessSettings'>;
  /** A patient's break-the-glass events, for the admin to list. */
  breakGlassEvents?: (patientId: string) => Promise<BreakGlassEvent[]>;
  /** Mints short-lived FHIR tokens for the admin's own tools (the bulk importer). */
  tokens?: TokenService;
  /**
   * Queues every upstream resource of an endpoint for re-aggregation (through the outbox), so that what
   * depends on the endpoint's settings — the default source organisation — follows a change; returns how many.
   */
  requeueEndpoint?: (endpointId: string) => Promise<number>;
  /** Told after an endpoint changed, so that per-process caches see the change on the next request. */
  onEndpointChanged?: (endpointId: string) => void;
  aggregation?: { lag(): Promise<Lag>; waitForIdle(timeoutMs?: number): Promise<Lag> };
  /** An endpoint's aggregation report, every type (aggregator/report.ts). */
  aggregationReport?: (endpointId: string) => Promise<AggregationReport>;
  /** Refreshes planner statistics (after bulk loads, before autovacuum gets there). */
  analyze?: () => Promise<void>;
  /** Searches the audit log (GET /admin/AuditEvent, GraphQL auditEvents). */
  auditEvents?: AuditSearch;
}

export interface CustomerFields {
  name: string;
}

export interface EndpointFields {
  customerId: string;
  fhirVersion: string;
  name: string;
  defaultSourceOrg: string;
}

export interface EndpointUpdateFields {
  name: string | null;
  defaultSourceOrg: string | null;
  enabled: boolean;
}

export interface ClientFields {
  /** May be left out when `organizationId` is given. */
  customerId: string;
  /** Default: the customer's default organisation. */
  organizationId: string;
  /** At most one of these two, of the client's organisation. */
  teamId: string;
  practitionerId: string;
  family: string;
  name: string;
  /** A space-separated string or a list. */
  scopes: string | string[];
  /** Public keys (a JWKS) for private_key_jwt client authentication. */
  jwks: unknown;
}

export interface KeyRotationFields {
  /** fhir or legacy; both when absent. */
  family: string;
}

export type ConsentFields = Required<ConsentInput>;

/** An endpoint after an update, with how many of its resources were queued to be re-aggregated (0 when none). */
export interface UpdatedEndpoint extends EndpointRecord {
  requeued: number;
}

const ENDPOINT_UPDATE = ['name', 'defaultSourceOrg', 'enabled'] as const;

export class AdminService {
  /** Organisations, teams, practitioners and team membership (organizationAdmin.ts). */
  readonly organizations: OrganizationAdmin;

  constructor(private readonly deps: AdminServiceDeps) {
    this.organizations = new OrganizationAdmin(deps.tenancy.organizations, (id) => deps.tenancy.getCustomer(id));
  }

  // Customers

  createCustomer(input: Untrusted<CustomerFields>): Promise<CustomerRecord> {
    onlyFields(input, ['name']);
    return this.deps.tenancy.createCustomer({ name: nameField(input.name, 'name', true) as string });
  }

  listCustomers(): Promise<CustomerRecord[]> {
    return this.deps.tenancy.listCustomers();
  }

  // Endpoints

  async createEndpoint(input: Untrusted<EndpointFields>): Promise<EndpointRecord> {
    onlyFields(input, ['customerId', 'fhirVersion', 'name', 'defaultSourceOrg']);
    const customerId = idField(input.customerId, 'customerId');
    const fhirVersion = fhirVersionField(input.fhirVersion);
    const name = nameField(input.name, 'name', false);
    const defaultSourceOrg = sourceOrgField(input.defaultSourceOrg);
    await this.requireCustomer(customerId);
    return this.deps.tenancy.createEndpoint({ customerId, fhirVersion, name, defaultSourceOrg });
  }

  async getEndpoint(id: unknown): Promise<EndpointRecord> {
    const endpointId = customerEndpointId(id);
    const endpoint = await this.deps.tenancy.getEndpoint(endpointId);
    if (!endpoint) throw notFound(`No endpoint '${endpointId}'`);
    return endpoint;
  }

  /** All endpoints, or one customer's; an unknown customer is a 404 rather than an empty list. */
  async listEndpoints(customerId?: unknown): Promise<EndpointRecord[]> {
    const customer = optionalId(customerId, 'customerId');
    if (customer !== undefined) await this.requireCustomer(customer);
    return this.deps.tenancy.listEndpoints(customer);
  }

  /**
   * Changes an endpoint's name, default source organisation or enabled flag; `null` clears the name or the
   * default. Giving `defaultSourceOrg` (even unchanged, so that a retry after a failure completes the job)
   * re-aggregates every resource of the endpoint, so the source-organisation codings of its copies follow.
   */
  async updateEndpoint(id: unknown, input: Untrusted<EndpointUpdateFields>): Promise<UpdatedEndpoint> {
    const endpointId = customerEndpointId(id);
    onlyFields(input, ENDPOINT_UPDATE);
    const changes: EndpointChanges = {};
    if (input.name !== undefined) changes.name = nameField(input.name, 'name', false);
    if (input.defaultSourceOrg !== undefined) changes.defaultSourceOrg = sourceOrgField(input.defaultSourceOrg);
    if (input.enabled !== undefined) changes.enabled = booleanField(input.enabled, 'enabled');
    if (Object.keys(changes).length === 0) throw badRequest(`Nothing to change: give ${ENDPOINT_UPDATE.join(', ')}`, [...ENDPOINT_UPDATE]);

    const endpoint = await this.deps.tenancy.updateEndpoint(endpointId, changes);
    if (!endpoint) throw notFound(`No endpoint '${endpointId}'`);
    this.deps.onEndpointChanged?.(endpointId);
    const requeued = 'defaultSourceOrg' in changes && this.deps.requeueEndpoint ? await this.deps.requeueEndpoint(endpointId) : 0;
    return { ...endpoint, requeued };
  }

  /** Stops an endpoint's feed: its FHIR requests are refused from the next one on; its data stays aggregated. */
  async disableEndpoint(id: unknown): Promise<EndpointRecord> {
    const { requeued: _, ...endpoint } = await this.updateEndpoint(id, { enabled: false });
    return endpoint;
  }

  /** A token on behalf of the endpoint's owner, for admin tools that load data through the FHIR API (`admin import`). */
  async endpointToken(id: unknown): Promise<IssuedToken> {
    const endpoint = await this.getEndpoint(id);
    if (!endpoint.enabled) throw conflict(`Endpoint '${endpoint.id}' is disabled: enable it first (endpoint update --enabled true)`);
    if (!this.deps.tokens) throw notFound('This server does not mint admin tokens');
    return this.deps.tokens.issue('fhir', { clientId: 'admin', customerId: endpoint.customerId, scopes: ['system/*.cruds'] });
  }

  /** A token acting for one organisation, for admin tools that write its native record (`admin import-native`). */
  async organizationToken(id: unknown): Promise<IssuedToken> {
    const organization = await this.organizations.getOrganization(id);
    if (organization.disabledAt) throw conflict(`Organization '${organization.id}' is disabled`);
    if (!this.deps.tokens) throw notFound('This server does not mint admin tokens');
    return this.deps.tokens.issue('fhir', { clientId: 'admin', customerId: organization.customerId, organizationId: organization.id, scopes: ['system/*.cruds'] });
  }

  // Token signing keys

  /**
   * A new signing key for a family's access tokens (both families when none is named); the replaced key keeps
   * verifying until the tokens it signed have expired, so nobody's token stops working.
   */
  async rotateSigningKeys(input: Untrusted<KeyRotationFields>): Promise<{ rotated: Awaited<ReturnType<TokenService['rotate']>> }> {
    onlyFields(input, ['family']);
    const family = optionalFamily(input.family);
    if (!this.deps.tokens) throw notFound('This server does not sign tokens');
    try {
      return { rotated: await this.deps.tokens.rotate(family) };
    } catch (err) {
      // Keys given in the environment are rotated by changing it (signingKeys.ts).
      throw conflict((err as Error).message);
    }
  }

  // API clients

  /**
   * A new client and its secret, the only time the secret exists in plain text. It acts for an organisation
   * (default: its customer's default one), optionally bound to one team or practitioner of it.
   */
  async createClient(input: Untrusted<ClientFields>): Promise<NewClient> {
    onlyFields(input, ['customerId', 'organizationId', 'teamId', 'practitionerId', 'family', 'name', 'scopes', 'jwks']);
    const family = familyField(input.family);
    const name = nameField(input.name, 'name', false);
    const scopes = input.scopes === undefined || input.scopes === null ? defaultScopes(family) : scopesField(input.scopes);
    const jwks = jwksField(input.jwks);
    const binding = await this.organizations.clientBinding(input);
    return this.deps.tenancy.createClient({ ...binding, family, name, scopes, jwks });
  }

  /** All clients, or one customer's (404 for an unknown customer), revoked ones included; never their secrets. */
  async listClients(customerId?: unknown): Promise<ClientRecord[]> {
    const customer = optionalId(customerId, 'customerId');
    if (customer !== undefined) await this.requireCustomer(customer);
    return this.deps.tenancy.listClients(customer);
  }

  /** The client gets no new tokens (issued ones run out within their short lifetime). Revoking twice is harmless. */
  async revokeClient(id: unknown): Promise<ClientRecord> {
    const clientId = idField(id, 'clientId');
    const client = await this.deps.tenancy.revokeClient(clientId);
    if (!client) throw notFound(`No API client '${clientId}'`);
    return client;
  }

  /** A new secret for the client, shown this once; the old secret stops working at once. */
  async rotateClientSecret(id: unknown): Promise<NewClient> {
    const clientId = idField(id, 'clientId');
    const client = await this.deps.tenancy.rotateSecret(clientId);
    if (client) return client;
    if (await this.deps.tenancy.findClient(clientId)) throw conflict(`API client '${clientId}' is revoked: create a new client instead`);
    throw notFound(`No API client '${clientId}'`);
  }

  // Consents

  grantConsent(input: Untrusted<ConsentFields>): Promise<ConsentRecord> {
    return this.grants().grant(consentOf(input));
  }

  revokeConsent(input: Untrusted<ConsentFields>): Promise<{ revoked: boolean; consent?: ConsentRecord }> {
    return this.grants().revoke(consentOf(input));
  }

  listConsents(filter: { patientId?: unknown; grantee?: unknown } = {}): Promise<ConsentRecord[]> {
    return this.grants().list(filter);
  }

  /** Everything a patient shares, withdrawn at once (every consent inactive). */
  withdrawConsents(patientId: unknown): Promise<ConsentRecord[]> {
    return this.grants().withdrawAll(patientId);
  }

  /** A patient's own access: frozen or not (`frozen` absent: just read it). */
  async patientAccess(patientId: unknown, input?: Untrusted<{ frozen: boolean }>): Promise<{ patientId: string; frozen: boolean; breakGlass: BreakGlassEvent[] }> {
    let settings;
    if (input !== undefined) {
      onlyFields(input, ['frozen']);
      settings = await this.grants().setFrozen(patientId, input.frozen);
    } else {
      settings = await this.grants().accessSettings(patientId);
    }
    return { ...settings, breakGlass: this.deps.breakGlassEvents ? await this.deps.breakGlassEvents(settings.patientId) : [] };
  }

  // Audit

  /** Admin search of the audit log (patient, date, agent, action, paging): a searchset Bundle of AuditEvents. */
  searchAuditEvents(query: Record<string, unknown>, baseUrl: string): Promise<Bundle> {
    if (!this.deps.auditEvents)
      throw new OperationOutcomeError(501, operationOutcome([{ severity: 'error', code: 'not-supported', diagnostics: 'The audit log is not available here' }]));
    return this.deps.auditEvents.search(auditQueryOf(query), baseUrl);
  }

  /** The same search, one page of rows (GraphQL auditEvents). */
  async auditEvents(query: Record<string, unknown>): Promise<AuditRow[]> {
    if (!this.deps.auditEvents) return [];
    return (await this.deps.auditEvents.find(auditQueryOf(query))).rows;
  }

  // Aggregation housekeeping

  aggregationLag(): Promise<Lag> {
    if (!this.deps.aggregation) throw notFound('No aggregation here');
    return this.deps.aggregation.lag();
  }

  /** What the aggregator made of an endpoint's resources: counts per type and rule, and the root causes of exclusions. */
  async aggregationReport(id: unknown): Promise<AggregationReport> {
    const endpoint = await this.getEndpoint(id);
    if (!this.deps.aggregationReport) throw notFound('No aggregation here');
    return this.deps.aggregationReport(endpoint.id);
  }

  /** Waits until every write so far is visible on the aggregated endpoint (tests, loaders, scripts); 503 on timeout. */
  async waitForAggregation(timeoutMs?: unknown): Promise<Lag> {
    if (!this.deps.aggregation) throw notFound('No aggregation here');
    const timeout = millisecondsField(timeoutMs, 'timeoutMs', 30_000);
    try {
      return await this.deps.aggregation.waitForIdle(timeout);
    } catch (err) {
      throw new OperationOutcomeError(503, operationOutcome([{ severity: 'error', code: 'timeout', diagnostics: (err as Error).message }]));
    }
  }

  async analyze(): Promise<{ analyzed: true; ms: number }> {
    if (!this.deps.analyze) throw notFound('Not available');
    const started = Date.now();
    await this.deps.analyze();
    return { analyzed: true, ms: Date.now() - started };
  }

  private grants(): NonNullable<AdminServiceDeps['grants']> {
    if (!this.deps.grants) throw notFound('No consents here');
    return this.deps.grants;
  }

  private async requireCustomer(customerId: string): Promise<void> {
    if (!(await this.deps.tenancy.getCustomer(customerId))) throw notFound(`No customer '${customerId}'`);
  }
}

/** Unknown fields are refused here; the registry validates the values (the same words for every door). */
function consentOf(input: Untrusted<ConsentFields>): ConsentInput {
  onlyFields(input, ['patientId', 'grantee', 'label']);
  return { patientId: input.patientId, grantee: input.grantee, label: input.label };
}

/**
 * An endpoint id the admin doors may name: an organisation's internal native store (src/native/nativeStore.ts)
 * is written only by its native record, so to the endpoint commands it does not exist (disabling or re-sourcing
 * it would cut the native record off from the aggregate).
 */
function customerEndpointId(id: unknown): string {
  const endpointId = idField(id, 'endpointId');
  if (isNativeStore(endpointId)) throw notFound(`No endpoint '${endpointId}'`);
  return endpointId;
}
