import pino, { type DestinationStream, type Logger } from 'pino';
import type { LogLevel } from '../config';
import type { FailedItem } from '../aggregator/worker';

/**
 * The structured logger for processes other than the HTTP server (`npm run worker`): pino, as Fastify uses it
 * for the server, so both write the same JSON lines (level, time, pid, hostname, msg and fields) to stdout and
 * one log pipeline reads them alike.
 */
export function createLogger(level: LogLevel, bindings: Record<string, unknown> = {}, destination?: DestinationStream): Logger {
  return (destination ? pino({ level }, destination) : pino({ level })).child(bindings);
}

/** One line per failed work item, with its outbox id and resource: what to look up with `$aggregation-status`. */
export function logFailedItem(log: Pick<Logger, 'warn' | 'error'>, failure: FailedItem): void {
  if (failure.parked) log.error(failure, 'aggregation work item parked after repeated failures');
  else log.warn(failure, 'aggregation work item failed; it will be retried');
}
