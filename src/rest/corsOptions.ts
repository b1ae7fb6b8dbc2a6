import type { FastifyCorsOptions } from '@fastify/cors';

/**
 * CORS for browser clients, one policy for the whole app (FHIR endpoints, /graphql, token endpoints).
 * Origins come from CORS_ORIGINS: exact origins are echoed back (with credentials allowed), `*` allows
 * any origin without credentials, and none (the default) adds no CORS header at all. Bearer tokens
 * travel in `Authorization`, which a preflight must name explicitly: a wildcard never covers it.
 */
const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];

/** What FHIR REST (conditional and versioned interactions, Prefer) and Apollo clients send. */
const ALLOWED_HEADERS = [
  'Authorization',
  'Content-Type',
  'Accept',
  'If-Match',
  'If-None-Match',
  'If-None-Exist',
  'If-Modified-Since',
  'Prefer',
  'X-Request-Id',
  'Idempotency-Key',
  'Apollo-Require-Preflight',
  'X-Apollo-Operation-Name',
];

/** Response headers a browser hides from scripts unless exposed, which FHIR clients read. */
const EXPOSED_HEADERS = ['Location', 'Content-Location', 'ETag', 'Last-Modified', 'WWW-Authenticate', 'Retry-After', 'Idempotent-Replayed'];

export function corsOptions(origins: readonly string[]): FastifyCorsOptions {
  const any = origins.includes('*');
  return {
    origin: any ? '*' : origins.length ? [...origins] : false,
    credentials: !any && origins.length > 0,
    methods: METHODS,
    allowedHeaders: ALLOWED_HEADERS,
    exposedHeaders: EXPOSED_HEADERS,
    // Browsers cap this (Chromium at 2 hours); it spares a preflight before every request.
    maxAge: 600,
  };
}
