/** How the merged Patient came about: the grouping rule, the members (yours named, others counted), which member gave which element. */
import type { Aggregation } from './api';

export function Provenance({ aggregation }: { aggregation: Aggregation | null }) {
  return (
    <section className="card" aria-labelledby="prov-title">
      <h2 id="prov-title">Merge provenance</h2>
      {!aggregation ? (
        <p className="muted">Not available to this sign-in.</p>
      ) : (
        <>
          <p>
            Grouped: <strong>{aggregation.rule}</strong>. {aggregation.members.length} member{aggregation.members.length === 1 ? '' : 's'} from your endpoints
            {aggregation.otherSources ? `, ${aggregation.otherSources} from other customers (not named)` : ''}.
          </p>
          <table>
            <caption className="visually-hidden">Members of the merged Patient</caption>
            <thead>
              <tr>
                <th scope="col">Endpoint</th>
                <th scope="col">Upstream resource</th>
                <th scope="col">Last updated</th>
              </tr>
            </thead>
            <tbody>
              {aggregation.members.map((m) => (
                <tr key={`${m.endpoint}/${m.upstreamId}`}>
                  <td>{m.endpoint}</td>
                  <td>
                    {m.upstreamType}/{m.upstreamId}
                  </td>
                  <td>{m.lastUpdated ?? '—'}</td>
                </tr>
              ))}
            </tbody>
          </table>
          {aggregation.elementSources.length > 0 && (
            <>
              <h3>Which member gave which element</h3>
              <ul>
                {aggregation.elementSources.map((e) => (
                  <li key={e.element}>
                    <code>{e.element}</code>: {e.endpoint ? `${e.endpoint}, ${e.upstreamId}` : "another customer's record"}
                  </li>
                ))}
              </ul>
            </>
          )}
        </>
      )}
    </section>
  );
}
