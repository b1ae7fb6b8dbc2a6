import type { FastifyServerOptions } from 'fastify';
import type { DestinationStream } from 'pino';
import type { LogLevel } from '../config';

/**
 * The HTTP server's logger options: pino at the configured level, with request URLs redacted (issue 16 item 5).
 * Clients put credentials in query strings (`?access_token=…` per RFC 6750 §2.3, an authorization `code`, a
 * `client_secret` by mistake); a log line is read by more people than the token was meant for, so the values of
 * such parameters are replaced before anything is written.
 */
const SECRET_PARAMETERS = new Set([
  'access_token',
  'refresh_token',
  'id_token',
  'token',
  'subject_token',
  'actor_token',
  'client_secret',
  'client_assertion',
  'assertion',
  'code',
  'code_verifier',
  'password',
  'passwd',
  'secret',
  'api_key',
  'apikey',
  'key',
  'session',
  'sessionid',
  'sig',
  'signature',
]);

export const REDACTED = '[REDACTED]';

/** `url` with the value of every credential-like query parameter replaced by `[REDACTED]`. */
export function redactUrl(url: string): string {
  const q = url.indexOf('?');
  if (q < 0) return url;
  const parts = url
    .slice(q + 1)
    .split('&')
    .map((pair) => {
      const eq = pair.indexOf('=');
      const rawName = eq < 0 ? pair : pair.slice(0, eq);
      let name: string;
      try {
        name = decodeURIComponent(rawName.replace(/\+/g, ' '));
      } catch {
        name = rawName;
      }
      return SECRET_PARAMETERS.has(name.trim().toLowerCase()) && eq >= 0 ? `${rawName}=${REDACTED}` : pair;
    });
  return `${url.slice(0, q)}?${parts.join('&')}`;
}

/** Fastify's `logger` option: false when silent, else pino whose request serializer redacts the URL. */
export function requestLogOptions(level: LogLevel, stream?: DestinationStream): FastifyServerOptions['logger'] {
  if (level === 'silent') return false;
  return {
    level,
    ...(stream ? { stream } : {}),
    serializers: {
      req: (request: { method: string; url: string; host?: string; ip?: string; socket?: { remotePort?: number } }) => ({
        method: request.method,
        url: redactUrl(request.url),
        host: request.host,
        remoteAddress: request.ip,
        remotePort: request.socket?.remotePort,
      }),
    },
  };
}
