/** Encounters, conditions, medications, allergies and immunizations, newest first, each with its source organisation. */
import { useState } from 'react';
import { conceptText, sourceOrg, type Entry, type PatientRecord } from './api';

const KINDS = ['Encounter', 'Condition', 'Medication', 'Allergy', 'Immunization'] as const;
type Kind = (typeof KINDS)[number];

interface Item {
  kind: Kind;
  id: string;
  date: string;
  text: string;
  source?: string;
}

function items(patient: PatientRecord): Item[] {
  const of = (kind: Kind, list: Entry[] | undefined, date: (e: Entry) => string | undefined, text: (e: Entry) => string): Item[] =>
    (list ?? []).map((e) => ({ kind, id: e.id ?? '', date: date(e) ?? '', text: text(e), source: sourceOrg(e) }));
  return [
    ...of(
      'Encounter',
      patient.EncounterList,
      (e) => e.period?.start,
      (e) => (e.type?.length ? conceptText(e.type[0]) : (e.class?.display ?? e.class?.code ?? 'Encounter')),
    ),
    ...of(
      'Condition',
      patient.ConditionList,
      (e) => e.onsetDateTime ?? e.recordedDate,
      (e) => conceptText(e.code),
    ),
    ...of(
      'Medication',
      patient.MedicationRequestList,
      (e) => e.authoredOn,
      (e) => conceptText(e.medicationCodeableConcept),
    ),
    ...of(
      'Allergy',
      patient.AllergyIntoleranceList,
      (e) => e.onsetDateTime ?? e.recordedDate,
      (e) => conceptText(e.code),
    ),
    ...of(
      'Immunization',
      patient.ImmunizationList,
      (e) => e.occurrenceDateTime,
      (e) => conceptText(e.vaccineCode),
    ),
  ].sort((a, b) => b.date.localeCompare(a.date));
}

export function Timeline({ patient, orgs }: { patient: PatientRecord; orgs: Map<string, string> }) {
  const [shown, setShown] = useState<Set<Kind>>(new Set(KINDS));
  const all = items(patient);
  const visible = all.filter((i) => shown.has(i.kind));
  return (
    <section className="card timeline" aria-labelledby="timeline-title">
      <h2 id="timeline-title">Timeline</h2>
      <fieldset className="filters">
        <legend>Show</legend>
        {KINDS.map((k) => (
          <label key={k}>
            <input
              type="checkbox"
              checked={shown.has(k)}
              onChange={() =>
                setShown((s) => {
                  const next = new Set(s);
                  if (next.has(k)) next.delete(k);
                  else next.add(k);
                  return next;
                })
              }
            />{' '}
            {k} ({all.filter((i) => i.kind === k).length})
          </label>
        ))}
      </fieldset>
      {visible.length === 0 ? (
        <p className="muted">Nothing to show.</p>
      ) : (
        <ol className="events">
          {visible.slice(0, 300).map((i) => (
            <li key={`${i.kind}/${i.id}`}>
              <time dateTime={i.date}>{i.date ? i.date.slice(0, 10) : 'undated'}</time>
              <span className={`kind ${i.kind.toLowerCase()}`}>{i.kind}</span>
              <span className="text">{i.text}</span>
              <span className="source">{i.source ? `from ${orgs.get(i.source) ?? `Organization/${i.source}`}` : ''}</span>
            </li>
          ))}
        </ol>
      )}
    </section>
  );
}
