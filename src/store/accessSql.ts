import type { AccessFilter } from '../service/ports';

/**
 * Splices an access filter (SQL over alias `r` with its own $1…$n placeholders) into a statement whose
 * parameters are `params`: the filter's values are appended and its placeholders renumbered.
 */
export function appendAccessFilter(filter: AccessFilter, params: unknown[], alias = 'r'): string {
  const offset = params.length;
  params.push(...filter.params);
  return `(${filter.sql.replace(/\$(\d+)/g, (_, n) => `$${Number(n) + offset}`).replace(/\br\./g, `${alias}.`)})`;
}
