import { AsyncLocalStorage } from 'node:async_hooks';
import { OperationOutcomeError, operationOutcome } from '../fhir/outcome';

/**
 * The request a SQL statement runs for (issue 16, "no runaway work"): it is cancelled when the client
 * disconnects or the request's deadline passes, and the store then cancels the statement on the server
 * (sql.ts) instead of letting it hold a pooled connection for minutes. Carried in AsyncLocalStorage, so the
 * services between the door and the store need not pass it along.
 *
 * A plain object with a list of listeners rather than an AbortController: every request makes one and every
 * statement listens on it, and an AbortSignal (an EventTarget) cost about 8 % of a key read's CPU in
 * allocation, `addEventListener` and `removeEventListener` (issue 19, `bench/readCost.ts`).
 */
export class QueryScope {
  private cancelled = false;
  private listeners: (() => void)[] = [];

  /** `describe`: what to tell the client when a statement is cancelled for this scope. */
  constructor(readonly describe: () => string) {}

  get aborted(): boolean {
    return this.cancelled;
  }

  /** Cancels the scope: each listener is called once, now. Later calls do nothing. */
  abort(): void {
    if (this.cancelled) return;
    this.cancelled = true;
    const listeners = this.listeners;
    this.listeners = [];
    for (const listener of listeners) listener();
  }

  /** Calls `listener` when the scope is cancelled; returns what stops it being called. */
  onAbort(listener: () => void): () => void {
    this.listeners.push(listener);
    return () => {
      const i = this.listeners.indexOf(listener);
      if (i >= 0) this.listeners.splice(i, 1);
    };
  }
}

const storage = new AsyncLocalStorage<QueryScope>();

export function currentQueryScope(): QueryScope | undefined {
  return storage.getStore();
}

/** Runs `fn` with its statements cancelled when `scope` is (a client that went away). */
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
  let late = false;
  const scope = new QueryScope(() =>
    late ? `The request took longer than ${ms} ms (${setting}) and was cancelled; narrow it or try again later` : (parent?.describe() ?? 'cancelled'),
  );
  const timer = setTimeout(() => {
    late = true;
    scope.abort();
  }, ms);
  timer.unref();
  const unfollow = parent?.onAbort(() => scope.abort());
  if (parent?.aborted) scope.abort();
  try {
    return await storage.run(scope, fn);
  } finally {
    clearTimeout(timer);
    unfollow?.();
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
