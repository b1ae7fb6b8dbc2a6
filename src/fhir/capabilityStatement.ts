import type { FhirVersion, Resource } from './types';

/**
 * CapabilityStatement generation: one function, fed by the definitions index (resource types and their
 * search parameters), describes any endpoint family. What differs between families is data, not code.
 */
export type TypeInteraction = 'read' | 'vread' | 'update' | 'patch' | 'delete' | 'history-instance' | 'history-type' | 'create' | 'search-type';
export type SystemInteraction = 'transaction' | 'batch' | 'search-system' | 'history-system';

export interface SearchParamSummary {
  name: string;
  type: string;
  definition?: string;
  documentation?: string;
}

export interface CapabilityOptions {
  fhirVersion: FhirVersion;
  baseUrl: string;
  name: string;
  title: string;
  kind: 'customer' | 'aggregated' | 'facade' | 'demographics';
  resourceTypes: readonly string[];
  interactions: readonly TypeInteraction[];
  systemInteractions: readonly SystemInteraction[];
  searchParams?: (type: string) => readonly SearchParamSummary[];
  conditional?: { create?: boolean; update?: boolean; delete?: 'not-supported' | 'single' | 'multiple'; read?: 'not-supported' | 'modified-since' | 'not-match' | 'full-support' };
  /** `cors`: whether any browser origin is allowed (CORS_ORIGINS). */
  security?: { oauthTokenUrl: string; cors: boolean };
  software: { name: string; version: string };
  /** `meta.lastUpdated`/`date`; fixed per process so the statement is stable between calls. */
  date?: string;
  /** Operations offered: at system level, or (`types`) on those resource types. */
  operations?: readonly OperationSummary[];
  /** Canonical CapabilityStatements this endpoint conforms to (Bulk Data's `bulk-data`). */
  instantiates?: readonly string[];
}

export interface OperationSummary {
  name: string;
  /** The OperationDefinition's canonical URL. */
  definition: string;
  types?: readonly string[];
}

/** The published OperationDefinitions of the operations Tributary implements. */
export const OPERATIONS = {
  graphql: { name: 'graphql', definition: 'http://hl7.org/fhir/OperationDefinition/Resource-graphql' },
  everything: { name: 'everything', definition: 'http://hl7.org/fhir/OperationDefinition/Patient-everything', types: ['Patient'] },
  export: { name: 'export', definition: 'http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export' },
  patientExport: { name: 'export', definition: 'http://hl7.org/fhir/uv/bulkdata/OperationDefinition/patient-export', types: ['Patient'] },
  groupExport: { name: 'export', definition: 'http://hl7.org/fhir/uv/bulkdata/OperationDefinition/group-export', types: ['Group'] },
} as const satisfies Record<string, OperationSummary>;

const operationEntry = (o: OperationSummary) => ({ name: o.name, definition: o.definition });

const FHIR_VERSION_NUMBER: Record<FhirVersion, string> = { R4: '4.0.1', STU3: '3.0.2' };
const STARTED = new Date().toISOString();

export function capabilityStatement(options: CapabilityOptions): Resource {
  const date = options.date ?? STARTED;
  const write = options.interactions.some((i) => i === 'create' || i === 'update' || i === 'delete' || i === 'patch');
  const resource = options.resourceTypes.map((type) => {
    const params = options.searchParams?.(type) ?? [];
    const operations = (options.operations ?? []).filter((o) => o.types?.includes(type));
    return {
      type,
      interaction: options.interactions.map((code) => ({ code })),
      versioning: 'versioned-update',
      readHistory: true,
      ...(write ? { updateCreate: true } : {}),
      ...(options.conditional?.create !== undefined ? { conditionalCreate: options.conditional.create } : {}),
      ...(options.conditional?.update !== undefined ? { conditionalUpdate: options.conditional.update } : {}),
      ...(options.conditional?.delete ? { conditionalDelete: options.conditional.delete } : {}),
      ...(options.conditional?.read ? { conditionalRead: options.conditional.read } : {}),
      ...(params.length
        ? {
            searchParam: params.map((p) => ({
              name: p.name,
              type: p.type,
              ...(p.definition ? { definition: p.definition } : {}),
              ...(p.documentation ? { documentation: p.documentation } : {}),
            })),
          }
        : {}),
      ...(operations.length ? { operation: operations.map(operationEntry) } : {}),
    };
  });
  const systemOperations = (options.operations ?? []).filter((o) => !o.types);
  const security = options.security
    ? {
        cors: options.security.cors,
        service: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/restful-security-service', code: 'OAuth', display: 'OAuth' }] }],
        description: 'OAuth 2.0 client credentials; present the access token as a Bearer token.',
        extension: [
          {
            url: 'http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris',
            extension: [{ url: 'token', valueUri: options.security.oauthTokenUrl }],
          },
        ],
      }
    : undefined;
  return {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date,
    publisher: options.software.name,
    kind: 'instance',
    ...(options.instantiates?.length ? { instantiates: [...options.instantiates] } : {}),
    name: options.name,
    title: options.title,
    software: { name: options.software.name, version: options.software.version },
    implementation: { description: options.title, url: options.baseUrl },
    fhirVersion: FHIR_VERSION_NUMBER[options.fhirVersion],
    format: ['application/fhir+json', 'application/json', 'application/fhir+xml', 'application/xml'],
    ...(write && options.fhirVersion === 'R4' ? { patchFormat: ['application/json-patch+json'] } : {}),
    rest: [
      {
        mode: 'server',
        ...(security ? { security } : {}),
        resource,
        interaction: options.systemInteractions.map((code) => ({ code })),
        ...(systemOperations.length ? { operation: systemOperations.map(operationEntry) } : {}),
      },
    ],
  };
}
