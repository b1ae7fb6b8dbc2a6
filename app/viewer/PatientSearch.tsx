/** Find a patient by name or NHS number; results are links into the record. */
import { useState, type FormEvent } from 'react';
import { displayName, findPatients, type PatientSummary } from './api';

export function PatientSearch({ authorization, onOpen }: { authorization: string; onOpen(id: string): void }) {
  const [text, setText] = useState('');
  const [results, setResults] = useState<PatientSummary[] | undefined>();
  const [error, setError] = useState('');

  async function search(event: FormEvent) {
    event.preventDefault();
    setError('');
    try {
      setResults(await findPatients(text.trim(), authorization));
    } catch (err) {
      setError((err as Error).message);
    }
  }

  return (
    <section className="card" aria-labelledby="find-title">
      <h2 id="find-title">Find a patient</h2>
      <form onSubmit={search} className="inline">
        <label htmlFor="patient-query">Name or NHS number</label>
        <input id="patient-query" type="search" value={text} onChange={(e) => setText(e.target.value)} required />
        <button type="submit">Search</button>
      </form>
      {error && (
        <p role="alert" className="error">
          {error}
        </p>
      )}
      {results && (
        <div role="status">
          {results.length === 0 ? (
            <p>No patient found.</p>
          ) : (
            <ul className="results" aria-label="Patients found">
              {results.map((p) => (
                <li key={p.id}>
                  <button type="button" className="link" onClick={() => p.id && onOpen(p.id)}>
                    {displayName(p)}
                  </button>{' '}
                  <span className="muted">
                    {p.birthDate ?? 'birth date unknown'} · {p.gender ?? 'gender unknown'}
                  </span>
                </li>
              ))}
            </ul>
          )}
        </div>
      )}
    </section>
  );
}
