import { GraphQLInt, GraphQLString, type GraphQLFieldConfigArgumentMap } from 'graphql';
import { searchParameterMap } from '../fhir/searchParameters';
import type { FhirVersion } from '../fhir/types';

/**
 * Search parameters as GraphQL arguments (graphql.html#searching): `birth-date` becomes `birth_date`,
 * plus `_count`, `_offset`, `_cursor` and `_sort`. Values are passed to search as they are in REST.
 *
 * Each FHIR version has its own parameters (Condition `asserted-date` and `context` are STU3's,
 * `recorded-date` R4's). A field that can search an endpoint of either version (`XList(_endpoint: …)` at
 * /graphql) takes the arguments of both; search, which knows the endpoint's version, refuses a parameter
 * the endpoint's version does not define, as REST does. An STU3 endpoint's own `$graphql` offers STU3's
 * alone (stu3Schema.ts).
 */
export const argName = (code: string) => code.replace(/-/g, '_');

/** Where a field's arguments come from: one FHIR version's parameters, or those of every version. */
export type ArgumentVersions = FhirVersion | 'any';
const VERSIONS: FhirVersion[] = ['R4', 'STU3'];

const codesByType = new Map<string, Map<string, string>>();

/** GraphQL argument name → FHIR parameter code, for one resource type and version (or every version). */
function codes(type: string, versions: ArgumentVersions): Map<string, string> {
  const key = `${versions}/${type}`;
  let map = codesByType.get(key);
  if (!map) {
    map = new Map();
    // argName is the same function in every version, so one name never stands for two codes.
    for (const version of versions === 'any' ? VERSIONS : [versions]) for (const code of searchParameterMap(type, version).keys()) map.set(argName(code), code);
    codesByType.set(key, map);
  }
  return map;
}

export function searchArguments(type: string, versions: ArgumentVersions = 'any'): GraphQLFieldConfigArgumentMap {
  const out: GraphQLFieldConfigArgumentMap = {};
  for (const name of codes(type, versions).keys()) out[name] = { type: GraphQLString };
  out._count = { type: GraphQLInt };
  out._offset = { type: GraphQLInt };
  out._cursor = { type: GraphQLString };
  out._sort = { type: GraphQLString };
  return out;
}

/** The search criteria in the arguments (not paging: `_count`, `_offset` and `_cursor` are the caller's). */
export function criteriaOf(type: string, args: Record<string, unknown>): [string, string][] {
  const map = codes(type, 'any');
  const params: [string, string][] = [];
  for (const [k, v] of Object.entries(args)) {
    if (v === undefined || v === null || ['_endpoint', '_count', '_offset', '_cursor'].includes(k)) continue;
    params.push([map.get(k) ?? k, String(v)]);
  }
  return params;
}
