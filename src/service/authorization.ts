import { type AuthorisedCaller, bearerToken, type Caller } from '../access/caller';
import type { RevokedClients } from '../access/revokedClients';
import { AGGREGATED_STORE } from '../aggregator/outbox';
import type { TokenService } from '../access/tokens';
import { forbidden, notFound, OperationOutcomeError, unauthorized } from '../fhir/outcome';
import type { FhirVersion } from '../fhir/types';
import type { EndpointRecord } from '../store/tenancyRepository';
import { FhirService, type FhirServiceDeps } from './fhirService';
import type { AccessFilter } from './ports';

/**
 * The one authorisation point below the doors (DESIGN §4; issue 12). REST, batch and transaction entries,
 * `$graphql` and `/graphql` all get their `FhirService`s here and nowhere else, and a `FhirService` cannot be
 * built without the caller it acts for. The checks, in order:
 * (a) the token: verified for the `fhir` family, not expired (`exp` required), its client not revoked;
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
  /** Absolute base URL of the server; read per call, as it may be settled only once the server listens. */
  publicUrl(): string;
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
    if (this.deps.revoked.has(caller.clientId)) throw revokedToken();
    return caller;
  }

  /** The caller's service on one of its customer's endpoints; 404 for any other endpoint id. */
  async customer(caller: Caller, endpointId: string): Promise<CustomerAccess> {
    const authorised = requireFhirFamily(caller);
    // A patient-scoped token speaks for one patient: a customer's feed holds everyone's data.
    if (caller.patientId) throw forbidden('A patient-scoped token reads the aggregated record only (/fhir/aggregated)');
    const endpoint = await this.deps.endpoint(endpointId);
    if (!endpoint || endpoint.customerId !== caller.customerId) throw notFound(`No FHIR endpoint '${endpointId}'`);
    // Its owner learns why; to anyone else it stays indistinguishable from a missing one (above).
    if (!endpoint.enabled) throw forbidden(`FHIR endpoint '${endpointId}' is disabled`);
    const baseUrl = `${this.deps.publicUrl()}/fhir/customer/${endpoint.id}`;
    return { endpoint, baseUrl, service: new FhirService(this.deps.services, { store: endpoint.id, fhirVersion: endpoint.fhirVersion as FhirVersion, caller: authorised }) };
  }

  /** The caller's service on the aggregated record, under its access predicate. */
  async aggregated(caller: Caller): Promise<AggregatedAccess> {
    const authorised = requireFhirFamily(caller);
    const accessFilter = await this.deps.aggregatedFilter(caller);
    return {
      baseUrl: `${this.deps.publicUrl()}/fhir/aggregated`,
      supported: this.deps.supported,
      service: new FhirService(this.deps.services, { store: AGGREGATED_STORE, fhirVersion: 'R4', caller: authorised, accessFilter }),
    };
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

/** RFC 6750 §3.1: a revoked token is an invalid one. */
function revokedToken(): OperationOutcomeError {
  const base = unauthorized('The access token was revoked with its client');
  return new OperationOutcomeError(base.status, base.outcome, {
    'WWW-Authenticate': 'Bearer realm="tributary", error="invalid_token", error_description="The access token was revoked with its client"',
  });
}
