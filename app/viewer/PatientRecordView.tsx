/**
 * One merged patient: demographics with their sources, the timeline, a lab chart, the merge provenance,
 * and live updates (the record is re-read when the server announces a change to it).
 */
import { useCallback, useEffect, useRef, useState } from 'react';
import { subscribe } from '../shared/graphqlClient';
import { loadRecord, organizationNames, RECORD_CHANGES, sourceOrg, type Aggregation, type PatientRecord, type RecordChangeEvent } from './api';
import { Demographics } from './Demographics';
import { EndpointReports } from './EndpointReports';
import { LabChart } from './LabChart';
import { Provenance } from './Provenance';
import { Timeline } from './Timeline';

export function PatientRecordView({ id, authorization }: { id: string; authorization: string }) {
  const [record, setRecord] = useState<{ patient: PatientRecord; aggregation: Aggregation | null } | undefined>();
  const [orgs, setOrgs] = useState<Map<string, string>>(new Map());
  const [error, setError] = useState('');
  const [changes, setChanges] = useState<RecordChangeEvent[]>([]);
  const [live, setLive] = useState<'connecting' | 'live' | 'stopped'>('connecting');
  const reloading = useRef<Promise<void> | undefined>(undefined);
  const again = useRef(false);

  const reload = useCallback(async () => {
    // One reload at a time; changes arriving meanwhile cause one more afterwards.
    if (reloading.current) {
      again.current = true;
      return;
    }
    const run = async () => {
      do {
        again.current = false;
        try {
          const next = await loadRecord(id, authorization);
          setRecord(next);
          const p = next.patient;
          const ids = new Set<string>();
          for (const list of [p.EncounterList, p.ConditionList, p.MedicationRequestList, p.AllergyIntoleranceList, p.ImmunizationList, p.ObservationList]) {
            for (const e of list ?? []) {
              const org = e && sourceOrg(e);
              if (org) ids.add(org);
            }
          }
          setOrgs(await organizationNames([...ids], authorization));
          setError('');
        } catch (err) {
          setError((err as Error).message);
        }
      } while (again.current);
    };
    reloading.current = run().finally(() => (reloading.current = undefined));
  }, [id, authorization]);

  useEffect(() => {
    void reload();
  }, [reload]);

  useEffect(() => {
    setLive('connecting');
    let since: string | undefined;
    let first = true;
    const stop = subscribe<{ patientRecordChanged: RecordChangeEvent }>({ query: RECORD_CHANGES, variables: { id, since } }, authorization, {
      next(result) {
        if (result.errors?.length) {
          setLive('stopped');
          return;
        }
        const change = result.data?.patientRecordChanged;
        if (!change) return;
        if (first) first = false;
        since = change.cursor;
        setLive('live');
        setChanges((c) => [change, ...c].slice(0, 20));
        void reload();
      },
      error: () => setLive('stopped'),
    });
    // No event yet is still a working subscription: show it as live once the server has had a moment.
    const ready = setTimeout(() => setLive((s) => (s === 'connecting' ? 'live' : s)), 1500);
    return () => {
      clearTimeout(ready);
      stop();
    };
  }, [id, authorization, reload]);

  if (error && !record)
    return (
      <p role="alert" className="error">
        {error}
      </p>
    );
  if (!record) return <p role="status">Loading the record…</p>;
  const { patient, aggregation } = record;

  return (
    <div className="record">
      <Demographics patient={patient} aggregation={aggregation} />
      <section className="card live" aria-labelledby="live-title">
        <h2 id="live-title">
          Live updates <span className={`badge ${live}`}>{live === 'live' ? 'connected' : live}</span>
        </h2>
        <ul aria-live="polite" aria-label="Recent changes" className="changes">
          {changes.length === 0 ? (
            <li className="muted">No change since you opened the record.</li>
          ) : (
            changes.map((c) => (
              <li key={c.cursor}>
                {c.change} {c.type} <span className="muted">(version {c.versionId})</span>
              </li>
            ))
          )}
        </ul>
      </section>
      <LabChart observations={patient.ObservationList ?? []} orgs={orgs} />
      <Timeline patient={patient} orgs={orgs} />
      <Provenance aggregation={aggregation} />
      <EndpointReports endpoints={[...new Set((aggregation?.members ?? []).map((m) => m.endpoint))].sort()} authorization={authorization} />
    </div>
  );
}
