import { indexKey } from '../search/indexKey';
import type { SqlClient } from '../store/sql';
import { AGGREGATED_STORE } from './outbox';

/**
 * The aggregated Patients carrying an NHS number as identifier (`https://fhir.nhs.uk/Id/nhs-number|<n>`),
 * looked up in the aggregated store's token index, as `Patient?identifier=…` would be. A merged group has
 * one Patient (an absorbed one keeps only its `replaced-by` link, no identifier), so one match is the rule;
 * at most two ids are returned, enough for the caller to tell "one" from "ambiguous".
 */
export const NHS_NUMBER_SYSTEM = 'https://fhir.nhs.uk/Id/nhs-number';

export function patientsByNhsNumber(sql: SqlClient): (nhsNumber: string) => Promise<string[]> {
  const key = indexKey(AGGREGATED_STORE, 'Patient', 'identifier');
  return async (nhsNumber) => {
    const rows = await sql.query<{ id: string }[]>(
      `SELECT DISTINCT r.id FROM search_token t JOIN resource r ON r.pk = t.resource_pk
       WHERE t.key = $1::bigint AND t.code = $2 AND t.system = $3 AND r.store = $4 AND r.type = 'Patient' AND NOT r.deleted
       ORDER BY r.id LIMIT 2`,
      key,
      nhsNumber,
      NHS_NUMBER_SYSTEM,
      AGGREGATED_STORE,
    );
    return rows.map((r) => r.id);
  };
}
