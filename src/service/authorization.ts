import { type AuthorisedCaller, bearerToken, type Caller } from '../access/caller';
import type { RevokedClients } from '../access/revokedClients';
import { AGGREGATED_STORE } from '../aggregator/outbox';
import type { TokenService } from '../access/tokens';
import { badRequest, forbidden, notFound, OperationOutcomeError, unauthorized } from '../fhir/outcome';
import type { FhirVersion } from '../fhir/types';
import type { EndpointRecord } from '../store/tenancyRepository';
import { AuditedFhirService } from '../audit/auditedFhirService';
import type { AuditSink } from '../audit/auditLog';
import { FhirService, type FhirServiceDeps, type StoreBinding } from './fhirService';
import type { AccessFilter } from './ports';
import type { AggregatedReads } from './aggregatedReads';
import type { NativeRecord } from '../native/nativeRecord';
import { isNativeStore, nativeStoreOf } from '../native/nativeStore';

/**
 * The one authorisation point below the doors (DESIGN §4; issue 12). REST, batch and transaction entries,
 * `$graphql` and `/graphql` all get their `FhirService`s here and nowhere else, and a `FhirService` cannot be
 * built without the caller it acts for. The checks, in order:
 * (a) the token: verified for the `fhir` family, not expired (`exp` required), its client not revoked and
 *     the organisation, team or practitioner it acts for not disabled (legacy family: `authenticateLegacy`);
 *     the endpoint: owned by the caller's customer (someone else's endpoint looks like a missing one);
 * (b) SMART scopes, per interaction and type, inside FhirService (access/scopeGuard.ts);
 * (c) the access predicate: the caller's types and, on aggregated data, what it may see
 *     (aggregator/access.ts), rendered into every row a query touches.
 * A refusal at (a) — a bad or missing token, a wrong family, someone else's endpoint — is audited here
 * (`access-refused`, with its status) before it is answered; (b) and later are audited by the service.
 */
export interface AuthorizationDeps {
  services: FhirServiceDeps;
  tokens: TokenService;
  revoked: RevokedClients;
  endpoint(id: string): Promise<EndpointRecord | null>;
  /** The access predicate of a caller on the aggregated record. */
  aggregatedFilter(caller: Caller): Promise<AccessFilter>;
  /** Types the aggregated record holds. */
  supported: ReadonlySet<string>;
  /** The public id (uuid) of an organisation, null when there is none; for the legacy family's X-Org-Public-Id. */
  organizationPublicId(organizationId: string): Promise<string | null>;
  /** Absolute base URL of the server; read per call, as it may be settled only once the server listens. */
  publicUrl(): string;
  /** The audit log: when enabled, every service handed out records each interaction (src/audit/). */
  audit?: AuditSink;
  /** With a streaming replica: which stores each aggregated service reads (aggregatedReads.ts); else the primary's. */
  aggregatedReads?: AggregatedReads;
  /** The native record of the organisation a checked caller acts for (src/native/; issue 14). */
  nativeRecord?(caller: AuthorisedCaller, organizationId: string): Promise<NativeRecord>;
}

export interface FacadeAccess {
  baseUrl: string;
  service: FhirService;
}

export interface CustomerAccess {
  endpoint: EndpointRecord;
  baseUrl: string;
  service: FhirService;
}

export interface AggregatedAccess {
  baseUrl: string;
  supported: ReadonlySet<string>;
  service: FhirService;
}

export class Authorization {
  constructor(private readonly deps: AuthorizationDeps) {}

  /** The caller of an `Authorization` header: 401 without a bearer token, or with one that is not valid here. */
  authenticate(authorization: string | undefined): Caller {
    const token = bearerToken(authorization);
    if (!token) throw unauthorized('A bearer token from /oauth2/token is required');
    const caller = this.deps.tokens.verify('fhir', token);
    this.refuseStopped(caller);
    return caller;
  }

  /**
   * The API client of a bearer token of either family (the per-client limits count legacy clients too), or
   * undefined when the token is valid for neither; what the token may do is still decided by its door.
   */
  clientIdOf(authorization: string): string | undefined {
    const token = bearerToken(authorization);
    if (!token) return undefined;
    for (const family of ['fhir', 'legacy'] as const) {
      try {
        return this.deps.tokens.verify(family, token).clientId;
      } catch {
        // not a token of this family
      }
    }
    return undefined;
  }

  /** `authenticate` for a door: a refusal is audited (with the requester's address) before it is thrown. */
  async authenticateRequest(authorization: string | undefined, address?: string): Promise<Caller> {
    try {
      return { ...this.authenticate(authorization), address };
    } catch (err) {
      throw await this.refused(err, { clientId: 'anonymous', address }, 'fhir access token');
    }
  }

  /** Records a refusal made before any service exists (the service audits its own); returns the error to throw. */
  private async refused(err: unknown, caller: Pick<Caller, 'clientId' | 'customerId' | 'address'> & Partial<Caller>, what: string): Promise<unknown> {
    if (err instanceof OperationOutcomeError && this.deps.audit?.enabled) {
      await this.deps.audit.record({ subtype: 'access-refused', caller: { ...caller, breakGlass: undefined }, type: what, status: err.status, detail: err.message });
    }
    return err;
  }

  /**
   * The caller of a legacy-family request (issue 13 item 6): its `legacy` token (401 without one, or with one
   * not valid here), and the organisation it names in `X-Org-Public-Id`, which must be the public id of the
   * organisation its client acts for: 400 when the header is missing or not a UUID, 403 when it names another.
   */
  async authenticateLegacy(authorization: string | undefined, xOrgPublicId: string | string[] | undefined, address?: string): Promise<Caller> {
    let caller: Caller | undefined;
    try {
      caller = await this.legacyCaller(authorization, xOrgPublicId);
      return { ...caller, address };
    } catch (err) {
      throw await this.refused(err, caller ? { ...caller, address } : { clientId: 'anonymous', address }, 'legacy access token');
    }
  }

  private async legacyCaller(authorization: string | undefined, xOrgPublicId: string | string[] | undefined): Promise<Caller> {
    const token = bearerToken(authorization);
    if (!token) throw unauthorized('A bearer token from /legacy/oauth2/token is required');
    const caller = this.deps.tokens.verify('legacy', token);
    this.refuseStopped(caller);
    if (xOrgPublicId === undefined || xOrgPublicId === '') throw badRequest('The X-Org-Public-Id header is required: the public id of your organisation', 'X-Org-Public-Id');
    if (typeof xOrgPublicId !== 'string' || !UUID.test(xOrgPublicId.trim())) {
      throw badRequest('The X-Org-Public-Id header must be one UUID: the public id of your organisation', 'X-Org-Public-Id');
    }
    const publicId = caller.organizationId ? await this.deps.organizationPublicId(caller.organizationId) : null;
    if (!publicId || publicId.toLowerCase() !== xOrgPublicId.trim().toLowerCase()) {
      throw forbidden("X-Org-Public-Id is not the public id of this client's organisation");
    }
    return caller;
  }

  /** A verified token whose client was revoked, or whose organisation, team or practitioner was disabled, is refused. */
  private refuseStopped(caller: Caller): void {
    const refusal = this.deps.revoked.refusal(caller);
    if (refusal) throw revokedToken(refusal === 'client' ? 'The access token was revoked with its client' : `The ${refusal} this access token acts for is disabled`);
  }

  /** The caller's service on one of its customer's endpoints; 404 for any other endpoint id. `audit` as for `aggregated`. */
  async customer(caller: Caller, endpointId: string, audit?: AuditSink): Promise<CustomerAccess> {
    try {
      return await this.customerNow(caller, endpointId, audit);
    } catch (err) {
      throw await this.refused(err, caller, `endpoint ${endpointId}`);
    }
  }

  private async customerNow(caller: Caller, endpointId: string, audit?: AuditSink): Promise<CustomerAccess> {
    const authorised = requireFhirFamily(caller);
    // A patient app speaks for one patient, whose data it reads on the aggregated record; a customer
    // endpoint holds every patient's data as the customer sent it.
    if (caller.patientId !== undefined) throw forbidden('A patient-scoped token reads the aggregated record (/fhir/aggregated) only');
    const endpoint = await this.deps.endpoint(endpointId);
    // An organisation's native store is written only by its native record (src/native/nativeStore.ts).
    if (!endpoint || endpoint.customerId !== caller.customerId || isNativeStore(endpoint.id)) throw notFound(`No FHIR endpoint '${endpointId}'`);
    // Its owner learns why; to anyone else it stays indistinguishable from a missing one (above).
    if (!endpoint.enabled) throw forbidden(`FHIR endpoint '${endpointId}' is disabled`);
    const baseUrl = `${this.deps.publicUrl()}/fhir/customer/${endpoint.id}`;
    return { endpoint, baseUrl, service: this.service({ store: endpoint.id, fhirVersion: endpoint.fhirVersion as FhirVersion, caller: authorised }, this.deps.services, audit) };
  }

  /**
   * The caller's service on the aggregated record, under its access predicate; on the replica when one serves
   * this read (aggregatedReads.ts). `live`: a subscription's delivery, always read on the primary. `audit`: where
   * its events go instead of the audit log itself (a GraphQL request's HeldAudit).
   */
  async aggregated(caller: Caller, options: { live?: boolean; audit?: AuditSink } = {}): Promise<AggregatedAccess> {
    let authorised: AuthorisedCaller;
    try {
      authorised = requireFhirFamily(caller);
    } catch (err) {
      throw await this.refused(err, caller, 'aggregated record');
    }
    const accessFilter = await this.deps.aggregatedFilter(caller);
    const stores = this.deps.aggregatedReads ? await this.deps.aggregatedReads.storesFor(authorised, accessFilter, options) : this.deps.services;
    return {
      baseUrl: `${this.deps.publicUrl()}/fhir/aggregated`,
      supported: this.deps.supported,
      service: this.service({ store: AGGREGATED_STORE, fhirVersion: 'R4', caller: authorised, accessFilter }, stores, options.audit),
    };
  }

  /**
   * The native record of the caller's organisation (issue 14): the web UI's GraphQL mutations and queries
   * (a `fhir`-family client of a customer, acting for one of its organisations) and the demographics
   * `$process-message` (a `legacy` client, after `authenticateLegacy`). Patient-scoped tokens write nothing.
   */
  async native(caller: Caller): Promise<NativeRecord> {
    const authorised = caller.family === 'legacy' ? requireLegacyFamily(caller) : requireFhirFamily(caller);
    if (caller.patientId !== undefined) throw forbidden('A patient-scoped token cannot write the native record');
    if (!caller.organizationId) throw forbidden('The native record is written for an organisation: this client acts for none');
    if (!this.deps.nativeRecord) throw notFound('The native record is not available on this server');
    return this.deps.nativeRecord(authorised, caller.organizationId);
  }

  /**
   * The facade (issue 14 item 2): a `legacy` caller reads the native record of the organisation it acts for
   * (its source view, DESIGN §4), never a customer endpoint's data: the service is bound to that
   * organisation's native store and to nothing else.
   */
  facade(caller: Caller): FacadeAccess {
    const authorised = requireLegacyFamily(caller);
    if (!caller.organizationId) throw forbidden('The facade serves the native record of an organisation: this client acts for none');
    return {
      baseUrl: `${this.deps.publicUrl()}/fhir/facade`,
      service: this.service({ store: nativeStoreOf(caller.organizationId), fhirVersion: 'R4', caller: authorised }),
    };
  }

  /**
   * The caller of a long-lived connection (a GraphQL subscription), checked again at each delivery: its
   * token not expired, nothing it acts for revoked or disabled since it connected; then its aggregated service.
   */
  async aggregatedNow(caller: Caller): Promise<AggregatedAccess> {
    if (caller.expiresAt !== undefined && caller.expiresAt * 1000 <= Date.now()) throw unauthorized('The access token has expired: reconnect with a new one');
    this.refuseStopped(caller);
    return this.aggregated(caller, { live: true });
  }

  /**
   * Every service is made here: audited unless the audit log is off. `held` (a GraphQL request's HeldAudit, which
   * writes to the same log) takes the events instead of the log when given.
   */
  private service(binding: StoreBinding, stores: FhirServiceDeps = this.deps.services, held?: AuditSink): FhirService {
    const audit = this.deps.audit;
    return audit?.enabled ? new AuditedFhirService(stores, binding, held ?? audit) : new FhirService(stores, binding);
  }

  /** The same two, bound to one caller (what the GraphQL context takes); `audit` as for `service`. */
  for(caller: Caller, audit?: AuditSink): { customer(endpointId: string): Promise<CustomerAccess>; aggregated(): Promise<AggregatedAccess> } {
    return { customer: (endpointId) => this.customer(caller, endpointId, audit), aggregated: () => this.aggregated(caller, { audit }) };
  }
}

/** (a) for every store: a `fhir`-family client of a customer. The checked caller is marked as such. */
function requireFhirFamily(caller: Caller): AuthorisedCaller {
  if (caller.family !== 'fhir' || caller.admin || !caller.customerId) throw forbidden('FHIR data needs a token from /oauth2/token');
  return caller as AuthorisedCaller;
}

/** The deprecating families (facade, demographics): a `legacy`-family client of a customer. */
function requireLegacyFamily(caller: Caller): AuthorisedCaller {
  if (caller.family !== 'legacy' || caller.admin || !caller.customerId) throw forbidden('The facade and demographics endpoints need a token from /legacy/oauth2/token');
  return caller as AuthorisedCaller;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** RFC 6750 §3.1: a revoked token is an invalid one. */
function revokedToken(description: string): OperationOutcomeError {
  const base = unauthorized(description);
  return new OperationOutcomeError(base.status, base.outcome, {
    'WWW-Authenticate': `Bearer realm="tributary", error="invalid_token", error_description="${description}"`,
  });
}
