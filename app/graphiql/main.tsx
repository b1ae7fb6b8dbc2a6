/**
 * The offline GraphQL explorer (GraphiQL, bundled at build time: no request leaves the server's origin).
 * A token bar above it signs in with a client's credentials or takes a pasted token; every request then
 * carries it as `Authorization: Bearer …` unless the headers editor sets its own. Subscriptions run over
 * graphql-ws on /graphql with the same token.
 */
import type { Fetcher } from '@graphiql/toolkit';
import { GraphiQL } from 'graphiql';
import 'graphiql/style.css';
import { StrictMode, useMemo, useState } from 'react';
import { createRoot } from 'react-dom/client';
import { isSubscription, iterate, post } from '../shared/graphqlClient';
import { TokenBar } from './TokenBar';
import './explorer.css';

const DEFAULT_QUERY = `# The merged record of one patient, with where each part came from.
# Sign in above (client id and secret, or paste a token), then run with Ctrl-Enter.
query PatientRecord($id: ID!) {
  Patient(id: $id) {
    id
    name { family given }
    birthDate
    ConditionList(_reference: patient) { id code { text } }
  }
}

# Live: the record's changes as they are aggregated.
subscription RecordChanges($id: ID!) {
  patientRecordChanged(patient: $id) { type id versionId change }
}
`;

function headerValue(headers: Record<string, unknown> | undefined, name: string): string | undefined {
  const key = Object.keys(headers ?? {}).find((k) => k.toLowerCase() === name);
  return key ? String(headers?.[key]) : undefined;
}

function Explorer() {
  const [token, setToken] = useState('');
  const fetcher = useMemo<Fetcher>(
    () => (params, options) => {
      const authorization = headerValue(options?.headers, 'authorization') ?? (token ? `Bearer ${token}` : '');
      const request = { query: params.query, variables: params.variables as Record<string, unknown> | undefined, operationName: params.operationName };
      // GraphiQL types results as graphql-js's ExecutionResult; the wire gives their JSON form, which it reads alike.
      return (isSubscription(params.query, params.operationName) ? iterate(request, authorization) : post(request, authorization)) as ReturnType<Fetcher>;
    },
    [token],
  );
  return (
    <div className="explorer">
      <TokenBar onToken={setToken} />
      <div className="explorer-main">
        {/* Keyed by the token: a new sign-in mounts it again, so the schema is fetched with the token (tabs persist). */}
        <GraphiQL key={token} fetcher={fetcher} defaultQuery={DEFAULT_QUERY} defaultEditorToolsVisibility="variables" />
      </div>
    </div>
  );
}

createRoot(document.getElementById('root') as HTMLElement).render(
  <StrictMode>
    <Explorer />
  </StrictMode>,
);
