/** The merged Patient's demographics, each value with the source that supplied it (element provenance). */
import { displayName, type Aggregation, type PatientRecord } from './api';

function sourceOf(aggregation: Aggregation | null, element: string): string {
  const s = aggregation?.elementSources.find((e) => e.element === element);
  if (!s) return aggregation && aggregation.members.length + aggregation.otherSources > 1 ? 'merged from every member' : 'the only member';
  return s.endpoint ? `endpoint ${s.endpoint} (Patient/${s.upstreamId})` : "another customer's record";
}

export function Demographics({ patient, aggregation }: { patient: PatientRecord; aggregation: Aggregation | null }) {
  const rows: [string, string, string][] = [
    ['Name', (patient.name ?? []).map((n) => n.text ?? [...(n.given ?? []), n.family].filter(Boolean).join(' ')).join('; ') || '—', sourceOf(aggregation, 'name')],
    ['Birth date', patient.birthDate ?? '—', sourceOf(aggregation, 'birthDate')],
    ['Gender', patient.gender ?? '—', sourceOf(aggregation, 'gender')],
    ['Identifiers', (patient.identifier ?? []).map((i) => i.value).join(', ') || '—', sourceOf(aggregation, 'identifier')],
    ['Address', (patient.address ?? []).map((a) => [...(a.line ?? []), a.city, a.postalCode].filter(Boolean).join(', ')).join('; ') || '—', sourceOf(aggregation, 'address')],
    ['Contact', (patient.telecom ?? []).map((t) => t.value).join(', ') || '—', sourceOf(aggregation, 'telecom')],
  ];
  return (
    <section className="card" aria-labelledby="demo-title">
      <h2 id="demo-title">{displayName(patient)}</h2>
      <table className="demographics">
        <caption className="visually-hidden">Merged demographics and where each value came from</caption>
        <thead>
          <tr>
            <th scope="col">Element</th>
            <th scope="col">Value</th>
            <th scope="col">Source</th>
          </tr>
        </thead>
        <tbody>
          {rows.map(([label, value, source]) => (
            <tr key={label}>
              <th scope="row">{label}</th>
              <td>{value}</td>
              <td className="source">{source}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
