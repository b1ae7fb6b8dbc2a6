/**
 * GraphQL from the browser: queries and mutations over HTTP POST to /graphql, subscriptions over the
 * graphql-ws protocol on the same path. The bearer token goes in the Authorization header, and for a
 * subscription in the connection's `Authorization` parameter (a browser WebSocket cannot send headers).
 * One WebSocket per token, shared by the subscriptions that use it; it reconnects after a server restart.
 */
import { getOperationAST, parse } from 'graphql';
import { createClient, type Client, type FormattedExecutionResult as ExecutionResult } from 'graphql-ws';
import { renewToken } from './session';

const sockets = new Map<string, Client>();

function socketFor(authorization: string): Client {
  let client = sockets.get(authorization);
  if (!client) {
    const url = new URL('/graphql', window.location.href);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    client = createClient({ url: url.toString(), connectionParams: authorization ? { Authorization: authorization } : {}, retryAttempts: Infinity, lazy: true });
    sockets.set(authorization, client);
  }
  return client;
}

export interface GraphqlRequest {
  query: string;
  variables?: Record<string, unknown>;
  operationName?: string | null;
}

/** A POST; on 401 (the token expired) once more with a renewed token, when the sign-in can renew it (session.ts). */
export async function post<T = Record<string, unknown>>(request: GraphqlRequest, authorization: string): Promise<ExecutionResult<T>> {
  const send = (auth: string) =>
    fetch('/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json', ...(auth ? { authorization: auth } : {}) },
      body: JSON.stringify(request),
    });
  let res = await send(authorization);
  if (res.status === 401) {
    const renewed = await renewToken();
    if (renewed) res = await send(`Bearer ${renewed}`);
  }
  return (await res.json()) as ExecutionResult<T>;
}

/** Each result of a subscription, until the returned function is called. */
export function subscribe<T = Record<string, unknown>>(
  request: GraphqlRequest,
  authorization: string,
  sink: { next(result: ExecutionResult<T>): void; error?(err: unknown): void },
): () => void {
  return socketFor(authorization).subscribe<T>(
    { query: request.query, variables: request.variables, operationName: request.operationName ?? undefined },
    { next: sink.next, error: (err) => sink.error?.(err), complete: () => undefined },
  );
}

/** The same subscription as an async iterable (what GraphiQL's fetcher hands back). */
export function iterate(request: GraphqlRequest, authorization: string): AsyncIterableIterator<ExecutionResult> {
  return socketFor(authorization).iterate({ query: request.query, variables: request.variables, operationName: request.operationName ?? undefined });
}

/** Whether the operation to run is a subscription (GraphiQL sends every kind through one fetcher). */
export function isSubscription(query: string, operationName?: string | null): boolean {
  try {
    return getOperationAST(parse(query), operationName ?? undefined)?.operation === 'subscription';
  } catch {
    return false; // the server explains the syntax error
  }
}
