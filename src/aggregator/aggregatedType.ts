/**
 * The type an upstream resource has in the aggregated (R4) record. STU3 types that R4 renamed are served
 * under their R4 name (HAPI's `ProcedureRequest30_40` converts a ProcedureRequest to a ServiceRequest), and
 * every reference to one is rewritten to that name with its aggregated id. R4 has no type of the old names,
 * so the mapping needs no FHIR version: on an R4 endpoint it is the identity.
 *
 * STU3 `ReferralRequest` has no converter in HAPI's `VersionConvertor_30_40`; it stays an unsupported type.
 */
const RENAMED_IN_R4: Readonly<Record<string, string>> = { ProcedureRequest: 'ServiceRequest' };

export const aggregatedType = (upstreamType: string): string => RENAMED_IN_R4[upstreamType] ?? upstreamType;
