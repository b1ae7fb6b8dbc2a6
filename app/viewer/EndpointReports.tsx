/**
 * For a customer's sign-in: what the aggregator excluded from each of its endpoints that feed this patient,
 * and why (the aggregation report's root causes). Endpoints come from the merge provenance, which names the
 * caller's own members only; a sign-in that owns none (a patient token) sees nothing here.
 */
import { useEffect, useState } from 'react';
import { aggregationReports, type AggregationReport } from './api';

export function EndpointReports({ endpoints, authorization }: { endpoints: string[]; authorization: string }) {
  const [reports, setReports] = useState<AggregationReport[] | undefined>();
  const key = endpoints.join(',');

  useEffect(() => {
    let current = true;
    setReports(undefined);
    void aggregationReports(key ? key.split(',') : [], authorization).then((r) => current && setReports(r));
    return () => {
      current = false;
    };
  }, [key, authorization]);

  if (!endpoints.length || (reports && !reports.length)) return null;
  return (
    <section className="card" aria-labelledby="reports-title">
      <h2 id="reports-title">Your endpoints: what was excluded and why</h2>
      {!reports ? (
        <p role="status">Loading the aggregation reports…</p>
      ) : (
        reports.map((r) => (
          <article key={r.endpoint} aria-label={`Aggregation report of endpoint ${r.endpoint}`}>
            <h3>Endpoint {r.endpoint}</h3>
            <p>
              {r.totals.included} included, <strong>{r.totals.excluded} excluded</strong>, {r.totals.pending} waiting, {r.totals.parked} set aside{' '}
              <span className="muted">(as of {r.generatedAt})</span>
            </p>
            {r.rootCauses.length === 0 ? (
              <p className="muted">Nothing excluded.</p>
            ) : (
              <ul className="exclusions">
                {r.rootCauses.map((c) => (
                  <li key={`${c.type}/${c.rule}`}>
                    {c.summary} <span className="muted">({c.rule})</span>
                    {c.examples.length > 0 && <span className="muted"> e.g. {c.examples.slice(0, 3).join(', ')}</span>}
                  </li>
                ))}
              </ul>
            )}
          </article>
        ))
      )}
    </section>
  );
}
