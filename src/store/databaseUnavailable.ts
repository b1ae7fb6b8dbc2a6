import { OperationOutcomeError, operationOutcome } from '../fhir/outcome';

/**
 * Tells a database outage from every other failure, so each door can answer it as what it is: the server
 * is alive but its store is not reachable now — 503 with `Retry-After`, never a 500. An outage shows up as
 * a connection that cannot be opened (ECONNREFUSED, a pool connect timeout), one the server dropped
 * (`57P01 admin_shutdown`, "Connection terminated"), or a server that is starting or stopping (`57P03`).
 * Drivers wrap these (Prisma's adapter keeps the pg error as `cause`), so the whole chain is looked at.
 */
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EPIPE', 'EAI_AGAIN']);

/** SQLSTATE classes 08 (connection exception) and 57P0x (operator intervention: shutdown, cannot connect now), 53300 (too many connections). */
const SQLSTATE = /^(08\d{3}|57P0[1-4]|53300)$/;

/**
 * Prisma's own codes for an unreachable or dropped server, a pool wait that ran out (P2024) and a transaction
 * that could not start or finish in its time (P2028: no connection within POOL_WAIT_TIMEOUT_MS, or past
 * STATEMENT_TIMEOUT_MS) — busy, not broken: retry later.
 */
const PRISMA_CODES = new Set(['P1001', 'P1002', 'P1017', 'P2024', 'P2028']);

const MESSAGES = [
  /connection terminated/i,
  /timeout exceeded when trying to connect/i,
  /connection (?:was )?(?:refused|reset|closed)/i,
  /the database system is (?:starting up|shutting down|in recovery mode)/i,
  /terminating connection due to administrator command/i,
  /can't reach database server/i,
  /client has encountered a connection error/i,
  /server closed the connection unexpectedly/i,
  // A read on a streaming replica cancelled because replay had to remove what it was reading (SQLSTATE 40001,
  // also used for serialisation failures on the primary, which this message does not match): retry shortly.
  /canceling statement due to conflict with recovery/i,
];

/** Seconds a client should wait before retrying: long enough for a restart, short enough to notice recovery. */
export const OUTAGE_RETRY_AFTER_SECONDS = 5;

export function isDatabaseUnavailable(err: unknown, depth = 0): boolean {
  if (!err || typeof err !== 'object' || depth > 6) return false;
  const e = err as { code?: unknown; message?: unknown; cause?: unknown; errors?: unknown; originalCode?: unknown; originalError?: unknown; thrownValue?: unknown };
  for (const code of [e.code, e.originalCode]) {
    if (typeof code === 'string' && (NETWORK_CODES.has(code) || SQLSTATE.test(code) || PRISMA_CODES.has(code))) return true;
  }
  if (typeof e.message === 'string' && MESSAGES.some((m) => m.test(e.message as string))) return true;
  if (Array.isArray(e.errors) && e.errors.some((x) => isDatabaseUnavailable(x, depth + 1))) return true;
  // graphql-js keeps what a resolver threw as `originalError`, or as `thrownValue` when it was no Error instance.
  return [e.cause, e.originalError, e.thrownValue].some((x) => isDatabaseUnavailable(x, depth + 1));
}

/** The 503 OperationOutcome (code `transient`) an outage is answered with. */
export function databaseUnavailable(): OperationOutcomeError {
  return new OperationOutcomeError(
    503,
    operationOutcome([{ severity: 'error', code: 'transient', diagnostics: 'The database is unavailable; retry after the time in Retry-After' }]),
    { 'Retry-After': String(OUTAGE_RETRY_AFTER_SECONDS) },
  );
}

/** `err` as the outage answer when it is one; otherwise `err` unchanged. */
export function outageOrSelf(err: unknown): unknown {
  return !(err instanceof OperationOutcomeError) && isDatabaseUnavailable(err) ? databaseUnavailable() : err;
}
