import type { PrismaClient } from '../generated/prisma/client';
import { badRequest, notSupported } from '../fhir/outcome';
import type { Bundle } from '../fhir/types';
import type { MatchRef, SearchPort, SearchQuery } from '../service/ports';
import type { Tx } from './resourceRepository';

/**
 * Matching for conditional interactions by `_id` and `identifier` only, through JSONB containment on the
 * resource table. It serves the foundation until the SQL-indexed search (src/store/search) replaces it;
 * every other parameter is refused with a 400 rather than silently ignored.
 */
export class IdentityMatcher implements SearchPort {
  constructor(private readonly prisma: PrismaClient) {}

  async search(_query: SearchQuery): Promise<Bundle> {
    throw notSupported('Search is not available on this server build');
  }

  async findMatches(
    query: { store: string; resourceType: string; params: [string, string][] },
    limit: number,
    tx?: Tx,
  ): Promise<MatchRef[]> {
    const where = ['store = $1', 'type = $2', 'NOT deleted'];
    const params: unknown[] = [query.store, query.resourceType];
    for (const [name, value] of query.params) {
      if (name === '_id') {
        params.push(value.split(','));
        where.push(`id = ANY($${params.length}::text[])`);
      } else if (name === 'identifier') {
        const alternatives = value.split(',').map((token) => {
          const bar = token.indexOf('|');
          const identifier = bar < 0 ? { value: token } : bar === 0 ? { value: token.slice(1) } : { system: token.slice(0, bar), value: token.slice(bar + 1) };
          if (!identifier.value) throw badRequest(`identifier '${token}' has no value`, 'identifier');
          params.push(JSON.stringify({ identifier: [identifier] }));
          return `content @> $${params.length}::jsonb`;
        });
        where.push(`(${alternatives.join(' OR ')})`);
      } else {
        throw badRequest(`Conditional matching supports _id and identifier only, not '${name}'`, name);
      }
    }
    if (!query.params.length) throw badRequest('Conditional interactions need search criteria');
    params.push(limit);
    const rows = await (tx ?? this.prisma).$queryRawUnsafe<{ type: string; id: string; version_id: number }[]>(
      `SELECT type, id, version_id FROM resource WHERE ${where.join(' AND ')} ORDER BY pk LIMIT $${params.length}`,
      ...params,
    );
    return rows.map((r) => ({ type: r.type, id: r.id, versionId: Number(r.version_id) }));
  }
}
