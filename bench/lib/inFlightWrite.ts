import { randomUUID } from 'node:crypto';
import { request } from 'node:http';

/**
 * A transaction write whose arrival at the server is known: the soak's and the shutdown test's in-flight
 * writes, sent just before SIGTERM. With `fetch`, a request may still sit in the client's pool when the
 * signal goes, and the server then rightly refuses it (connection refused, or 503 for a request it reads
 * after it began to stop): that says nothing about requests it had accepted.
 */
export interface InFlightWrite {
  /** The request's bytes are all on a connected socket. */
  sent: Promise<boolean>;
  /** The status it was answered with, or the error that ended it. */
  outcome: Promise<{ status: number; error?: string; at: number }>;
}

/**
 * One transaction write on a connection of its own (no keep-alive socket shared with the load, which the
 * server may close as idle when it stops, or answer 503 for a request it reads only after it began to stop):
 * `sent` resolves once the socket is connected and the whole body written, so the caller knows the server has it.
 */
export function inFlightWrite(url: string, token: string, body: string): InFlightWrite {
  let markSent: (sent: boolean) => void = () => undefined;
  const sent = new Promise<boolean>((resolve) => (markSent = resolve));
  const outcome = new Promise<{ status: number; error?: string; at: number }>((resolve) => {
    const req = request(url, {
      method: 'POST',
      agent: false,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/fhir+json', 'idempotency-key': randomUUID(), 'content-length': Buffer.byteLength(body) },
    });
    req.on('finish', () => markSent(true));
    req.on('response', (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, at: Date.now() }));
      res.on('error', (err) => resolve({ status: 0, error: err.message, at: Date.now() }));
    });
    req.on('error', (err) => {
      markSent(false);
      resolve({ status: 0, error: `${(err as NodeJS.ErrnoException).code ?? ''} ${err.message}`.trim(), at: Date.now() });
    });
    req.end(body);
  });
  return { sent, outcome };
}
