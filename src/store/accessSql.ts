import type { AccessFilter } from '../service/ports';

/** Renders an access filter for row alias `alias`, appending its values to `params` (a statement's $1…$n). */
export function appendAccessFilter(filter: AccessFilter, params: unknown[], alias = 'r'): string {
  return `(${filter.condition(alias, (value) => {
    params.push(value);
    return `$${params.length}`;
  })})`;
}
