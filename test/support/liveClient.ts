import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';

/**
 * A graphql-ws client on the server's /graphql (what a web UI's subscription library speaks), collecting
 * the events of one subscription. Waits are for an event to arrive, never for a time to pass.
 */
export interface LiveSubscription {
  events: Record<string, any>[];
  error?: unknown;
  /** Resolves with the first event (data of the root field) matching `predicate`, rejects if the subscription ends first. */
  waitFor(predicate: (event: Record<string, any>) => boolean): Promise<Record<string, any>>;
  /** Resolves when the subscription ends with an error (or completes). */
  ended(): Promise<unknown>;
  close(): Promise<void>;
}

export function liveClient(url: string, token?: string): Client {
  return createClient({
    url: `${url.replace(/^http/, 'ws')}/graphql`,
    webSocketImpl: WebSocket,
    connectionParams: token ? { Authorization: `Bearer ${token}` } : {},
    retryAttempts: 0,
    lazy: true,
  });
}

export function subscribe(url: string, token: string | undefined, query: string, variables: Record<string, unknown> = {}): LiveSubscription {
  const client = liveClient(url, token);
  const listeners = new Set<() => void>();
  let done = false;
  const notify = () => listeners.forEach((l) => l());
  const sub: LiveSubscription = {
    events: [],
    waitFor(predicate) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = sub.events.find(predicate);
          if (found) {
            listeners.delete(check);
            resolve(found);
          } else if (done) {
            listeners.delete(check);
            reject(new Error(`the subscription ended first: ${JSON.stringify(sub.error ?? 'completed')}; events: ${JSON.stringify(sub.events)}`));
          }
        };
        listeners.add(check);
        check();
      });
    },
    ended() {
      return new Promise((resolve) => {
        const check = () => {
          if (done) {
            listeners.delete(check);
            resolve(sub.error);
          }
        };
        listeners.add(check);
        check();
      });
    },
    async close() {
      dispose();
      await client.dispose();
    },
  };
  const dispose = client.subscribe(
    { query, variables },
    {
      next: (result) => {
        if (result.errors) sub.error = result.errors;
        const data = result.data as Record<string, any> | undefined;
        if (data) sub.events.push(Object.values(data)[0]);
        notify();
      },
      error: (err) => {
        sub.error = err;
        done = true;
        notify();
      },
      complete: () => {
        done = true;
        notify();
      },
    },
  );
  return sub;
}
