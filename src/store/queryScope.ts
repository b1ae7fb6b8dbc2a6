import { AsyncLocalStorage } from 'node:async_hooks';
import { OperationOutcomeError, operationOutcome } from '../fhir/outcome';

/**
 * The request a SQL statement runs for (issue 16, "no runaway work"): its abort signal fires when the client
 * disconnects or the request's deadline passes, and the store then cancels the statement on the server
 * (sql.ts) instead of letting it hold a pooled connection for minutes. Carried in AsyncLocalStorage, so the
 * services between the door and the store need not pass it along.
 */
export interface QueryScope {
  signal: AbortSignal;
  /** What to tell the client when a statement is cancelled for this scope. */
  describe(): string;
}

const storage = new AsyncLocalStorage<QueryScope>();

export function currentQueryScope(): QueryScope | undefined {
  return storage.getStore();
}

/** Runs `fn` with statements cancelled when `signal` fires (a client that went away). */
export function inQueryScope<T>(scope: QueryScope, fn: () => T): T {
  return storage.run(scope, fn);
}

/**
 * Runs `fn` with a deadline of `ms` on top of the current scope: statements still running when it passes are
 * cancelled and `fn` fails with 503 naming `setting` (e.g. SEARCH_TIMEOUT_MS). `ms` ≤ 0: no deadline.
 */
export async function withDeadline<T>(ms: number, setting: string, fn: () => Promise<T>): Promise<T> {
  if (ms <= 0) return fn();
  const parent = storage.getStore();
  const deadline = new AbortController();
  const timer = setTimeout(() => deadline.abort(), ms);
  timer.unref();
  const signal = parent ? AbortSignal.any([parent.signal, deadline.signal]) : deadline.signal;
  const scope: QueryScope = {
    signal,
    describe: () =>
      deadline.signal.aborted ? `The request took longer than ${ms} ms (${setting}) and was cancelled; narrow it or try again later` : (parent?.describe() ?? 'cancelled'),
  };
  try {
    return await storage.run(scope, fn);
  } finally {
    clearTimeout(timer);
  }
}

/** The answer to a cancelled or timed-out statement: 503 with Retry-After, the condition being transient. */
export function queryCancelled(diagnostics: string): OperationOutcomeError {
  return new OperationOutcomeError(503, operationOutcome([{ severity: 'error', code: 'timeout', diagnostics }]), { 'Retry-After': '5' });
}

/** No connection came free within the pool's wait timeout: 503 with Retry-After rather than queueing for ever. */
export function poolExhausted(waitMs: number): OperationOutcomeError {
  return new OperationOutcomeError(
    503,
    operationOutcome([
      { severity: 'error', code: 'transient', diagnostics: `The server is busy: no database connection came free within ${waitMs} ms (POOL_WAIT_TIMEOUT_MS); try again later` },
    ]),
    { 'Retry-After': '2' },
  );
}
