import type { FhirVersion, Resource } from '../fhir/types';
import type { AdminOps } from './adminSchema';
import type { AggregationOps } from './aggregationSchema';
import type { AuditOps } from './auditSchema';
import type { GraphqlDataSource } from './dataSource';
import type { LiveOps } from './liveSchema';
import type { Loaders } from './loaders';
import type { PatientControlsFor } from '../consent/patientControls';
import type { NativeRecord } from '../native/nativeRecord';

/**
 * Where a value the resolvers return came from: the customer endpoint (undefined: the aggregated record)
 * and the resource it sits in. References inside it resolve against that endpoint, and `#id` references
 * against that resource's `contained`.
 */
export interface Origin {
  endpoint?: string;
  resource?: Resource;
}

/** Per request: the caller's data source and loaders (authenticated in the context, authorised below it). */
export interface GraphqlContext {
  source: GraphqlDataSource;
  loaders: Loaders;
  origin: WeakMap<object, Origin>;
  /** Where `_endpoint`-less fields go: a customer endpoint's own `$graphql`, else the aggregated record. */
  defaultEndpoint?: string;
  /** The FHIR version of `defaultEndpoint`: an STU3 endpoint's `$graphql` has STU3's types and search parameters (stu3Schema.ts). */
  fhirVersion?: FhirVersion;
  /** Aggregation views (FHIR callers) and admin operations (admin caller), see aggregationSchema.ts. */
  aggregation?: AggregationOps;
  admin?: AdminOps;
  /** The audit log: the admin's search, a patient's own record accesses (auditSchema.ts). */
  audit?: AuditOps;
  /** Consent, the patient's own controls and break-the-glass, for this caller (consentSchema.ts). */
  consent?: PatientControlsFor;
  /** The native record of the caller's organisation, from the authorisation point (nativeSchema.ts). */
  native?: () => Promise<NativeRecord>;
  /** The live record, on a graphql-ws connection only (liveSchema.ts). */
  live?: LiveOps;
  /** `@slice` labels by response path, recorded during execution (sliceLabels.ts). */
  slices?: Map<string, string>;
  /**
   * Writes the request's audit events, held while it ran (audit/heldAudit.ts); the door sends nothing before it
   * resolves. Absent where events are written as they happen (a graphql-ws connection, the audit log off).
   */
  releaseAudit?: () => Promise<void>;
}

/** Records the origin of a resource the data source returned (the resource is its own container). */
export function fromEndpoint<T extends Resource | null | undefined>(ctx: GraphqlContext, resource: T, endpoint: string | undefined): T {
  if (resource) ctx.origin.set(resource, { endpoint, resource });
  return resource;
}

/** Nested objects (and list elements) inherit the origin of the object they sit in. */
export function inherit(ctx: GraphqlContext, value: unknown, parent: object): unknown {
  const origin = ctx.origin.get(parent);
  if (!origin) return value;
  if (Array.isArray(value)) {
    for (const v of value) if (v && typeof v === 'object') ctx.origin.set(v, origin);
  } else if (value && typeof value === 'object') {
    ctx.origin.set(value, origin);
  }
  return value;
}
