/**
 * The record viewer (/app): sign in, find a patient, read the merged record with where each part came from,
 * and watch it change live. Plain React; every read goes through /graphql with the signed-in token.
 */
import { StrictMode, useEffect, useState } from 'react';
import { createRoot } from 'react-dom/client';
import { forgetCredentials, onTokenRenewed, savedToken, saveToken } from '../shared/session';
import { PatientRecordView } from './PatientRecordView';
import { PatientSearch } from './PatientSearch';
import { SignIn } from './SignIn';
import './viewer.css';

function Viewer() {
  const [token, setToken] = useState(savedToken);
  const [patientId, setPatientId] = useState<string | undefined>(() => new URLSearchParams(location.search).get('patient') ?? undefined);

  // A renewed token (session.ts) replaces the expired one: reads use it, and the subscription reconnects with it.
  useEffect(() => onTokenRenewed(setToken), []);

  const signOut = () => {
    forgetCredentials();
    saveToken('');
    setToken('');
    setPatientId(undefined);
  };
  const open = (id: string | undefined) => {
    setPatientId(id);
    history.replaceState(null, '', id ? `?patient=${encodeURIComponent(id)}` : location.pathname);
  };

  return (
    <>
      <header className="bar">
        <h1>Tributary record viewer</h1>
        {token && (
          <nav aria-label="Session">
            {patientId && (
              <button type="button" onClick={() => open(undefined)}>
                Find another patient
              </button>
            )}
            <button type="button" onClick={signOut}>
              Sign out
            </button>
          </nav>
        )}
      </header>
      <main>
        {!token ? (
          <SignIn
            onToken={(t) => {
              saveToken(t);
              setToken(t);
            }}
          />
        ) : patientId ? (
          <PatientRecordView id={patientId} authorization={`Bearer ${token}`} />
        ) : (
          <PatientSearch authorization={`Bearer ${token}`} onOpen={open} />
        )}
      </main>
    </>
  );
}

createRoot(document.getElementById('root') as HTMLElement).render(
  <StrictMode>
    <Viewer />
  </StrictMode>,
);
