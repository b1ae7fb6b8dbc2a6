import type { Socket } from 'node:net';
import { operationOutcome } from '../fhir/outcome';

/**
 * Requests Node's HTTP parser refuses before any route sees them (issue 16): a request line and headers over
 * the 16 KB limit (431), a client too slow to send them (408), bytes that are not HTTP (400). The answer is an
 * OperationOutcome like every other error, and it is delivered: the socket is ended after the answer and
 * what the client is still sending is read and dropped, rather than the connection being reset at once (which
 * can throw the answer away before the client reads it, leaving it with a reset instead of an HTTP status).
 */
const ANSWERS: Record<string, [number, string, string]> = {
  HPE_HEADER_OVERFLOW: [431, 'Request Header Fields Too Large', 'The request line and headers are larger than the 16 KB this server reads: shorten the URL (or POST a _search)'],
  ERR_HTTP_REQUEST_TIMEOUT: [408, 'Request Timeout', 'The request was not received in time'],
};

/** How long a refused connection may linger while the client finishes sending. */
const GRACE_MS = 5_000;

export function clientErrorHandler(err: NodeJS.ErrnoException, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, reason, diagnostics] = ANSWERS[err.code ?? ''] ?? [400, 'Bad Request', 'The request is not valid HTTP'];
  const body = JSON.stringify(operationOutcome([{ severity: 'error', code: status === 408 ? 'timeout' : 'invalid', diagnostics }]));
  if (socket.writable) {
    socket.end(
      `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/fhir+json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
    socket.on('data', () => undefined);
    socket.resume();
    setTimeout(() => socket.destroy(), GRACE_MS).unref();
  } else socket.destroy();
}
