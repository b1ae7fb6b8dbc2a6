import { GraphQLInt, GraphQLString, type GraphQLFieldConfigArgumentMap } from 'graphql';
import { searchParameterMap } from '../fhir/searchParameters';

/**
 * Search parameters as GraphQL arguments (graphql.html#searching): `birth-date` becomes `birth_date`,
 * plus `_count`, `_offset`, `_cursor` and `_sort`. Values are passed to search as they are in REST.
 */
export const argName = (code: string) => code.replace(/-/g, '_');

const codesByType = new Map<string, Map<string, string>>();

/** GraphQL argument name → FHIR parameter code, for one resource type. */
function codes(type: string): Map<string, string> {
  let map = codesByType.get(type);
  if (!map) {
    map = new Map();
    for (const code of searchParameterMap(type).keys()) map.set(argName(code), code);
    codesByType.set(type, map);
  }
  return map;
}

export function searchArguments(type: string): GraphQLFieldConfigArgumentMap {
  const out: GraphQLFieldConfigArgumentMap = {};
  for (const name of codes(type).keys()) out[name] = { type: GraphQLString };
  out._count = { type: GraphQLInt };
  out._offset = { type: GraphQLInt };
  out._cursor = { type: GraphQLString };
  out._sort = { type: GraphQLString };
  return out;
}

/** The search criteria in the arguments (not paging: `_count`, `_offset` and `_cursor` are the caller's). */
export function criteriaOf(type: string, args: Record<string, unknown>): [string, string][] {
  const map = codes(type);
  const params: [string, string][] = [];
  for (const [k, v] of Object.entries(args)) {
    if (v === undefined || v === null || ['_endpoint', '_count', '_offset', '_cursor'].includes(k)) continue;
    params.push([map.get(k) ?? k, String(v)]);
  }
  return params;
}
