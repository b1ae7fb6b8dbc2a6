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
   * The caller of a legacy-family request (issue 13 item 6): its `legacy` token (401 without one, or with one
   * not valid here), and the organisation it names in `X-Org-Public-Id`, which must be the public id of the
   * organisation its client acts for: 400 when the header is missing or not a UUID, 403 when it names another.
   */
  async authenticateLegacy(authorization: string | undefined, xOrgPublicId: string | string[] | undefined): Promise<Caller> {
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

  /** The caller's service on one of its customer's endpoints; 404 for any other endpoint id. */
  async customer(caller: Caller, endpointId: string): Promise<CustomerAccess> {
    const authorised = requireFhirFamily(caller);
    // A patient app speaks for one patient, whose data it reads on the aggregated record; a customer
    // endpoint holds every patient's data as the customer sent it.
    if (caller.patientId !== undefined) throw forbidden('A patient-scoped token reads the aggregated record (/fhir/aggregated) only');
    const endpoint = await this.deps.endpoint(endpointId);
    if (!endpoint || endpoint.customerId !== caller.customerId) throw notFound(`No FHIR endpoint '${endpointId}'`);
    // Its owner learns why; to anyone else it stays indistinguishable from a missing one (above).
    if (!endpoint.enabled) throw forbidden(`FHIR endpoint '${endpointId}' is disabled`);
    const baseUrl = `${this.deps.publicUrl()}/fhir/customer/${endpoint.id}`;
    return { endpoint, baseUrl, service: this.service({ store: endpoint.id, fhirVersion: endpoint.fhirVersion as FhirVersion, caller: authorised }) };
  }

  /** The caller's service on the aggregated record, under its access predicate. */
  async aggregated(caller: Caller): Promise<AggregatedAccess> {
    const authorised = requireFhirFamily(caller);
    const accessFilter = await this.deps.aggregatedFilter(caller);
    return {
      baseUrl: `${this.deps.publicUrl()}/fhir/aggregated`,
      supported: this.deps.supported,
      service: this.service({ store: AGGREGATED_STORE, fhirVersion: 'R4', caller: authorised, accessFilter }),
    };
  }

  /**
   * The caller of a long-lived connection (a GraphQL subscription), checked again at each delivery: its
   * token not expired, nothing it acts for revoked or disabled since it connected; then its aggregated service.
   */
  async aggregatedNow(caller: Caller): Promise<AggregatedAccess> {
    if (caller.expiresAt !== undefined && caller.expiresAt * 1000 <= Date.now()) throw unauthorized('The access token has expired: reconnect with a new one');
    this.refuseStopped(caller);
    return this.aggregated(caller);
  }

  /** Every service is made here: audited unless the audit log is off. */
  private service(binding: StoreBinding): FhirService {
    const audit = this.deps.audit;
    return audit?.enabled ? new AuditedFhirService(this.deps.services, binding, audit) : new FhirService(this.deps.services, binding);
  }

  /** The same two, bound to one caller (what the GraphQL context takes). */
  for(caller: Caller): { customer(endpointId: string): Promise<CustomerAccess>; aggregated(): Promise<AggregatedAccess> } {
    return { customer: (endpointId) => this.customer(caller, endpointId), aggregated: () => this.aggregated(caller) };
  }
}

/** (a) for every store: a `fhir`-family client of a customer. The checked caller is marked as such. */
function requireFhirFamily(caller: Caller): AuthorisedCaller {
  if (caller.family !== 'fhir' || caller.admin || !caller.customerId) throw forbidden('FHIR data needs a token from /oauth2/token');
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
