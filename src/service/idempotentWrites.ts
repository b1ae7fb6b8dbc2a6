import { createHash } from 'node:crypto';
import { badRequest, OperationOutcomeError, operationOutcome } from '../fhir/outcome';
import type { Claim, IdempotencyRepository, RecordedResponse } from '../store/idempotencyRepository';
import type { FhirService } from './fhirService';

/**
 * Idempotent retries (issue 16 item 3). A client that sends a write or a Bundle with an `Idempotency-Key`
 * header may send it again — after a timeout, a dropped connection, a crashed server — and get the first
 * response (status, headers such as ETag and Location, body) instead of a second write. The key and the
 * response are stored in the same database transaction as the write itself, so a commit whose response
 * was lost still answers the retry. Keys are scoped per API client and endpoint and live `windowSeconds`;
 * the same key on a different request (method, path, query, conditional headers, body) is a 422.
 *
 * `X-Request-Id` is deliberately not a key: proxies and tracing set it per hop or per attempt, and
 * treating it as one would record the response of every write that passes such a proxy.
 */
export const IDEMPOTENCY_HEADER = 'idempotency-key';

/** What identifies "the same request": everything that can change what a write does. */
export interface IdempotentRequest {
  key: string;
  method: string;
  path: string;
  query: [string, string][];
  headers: Record<string, string | undefined>;
  body: unknown;
  /** Resources it may write, for the aggregation's backpressure (admission.ts). */
  items: number;
}

/** Printable ASCII without spaces, as RFC 9110 tokens and UUIDs are; long enough for any client's scheme. */
const KEY = /^[\x21-\x7e]{1,255}$/;
/** Request headers that change what a write does. */
const MEANINGFUL_HEADERS = ['if-match', 'if-none-exist', 'if-none-match', 'if-modified-since', 'prefer', 'accept'];
/** One request in this many also forgets expired keys (no timer to manage, no table that grows for ever). */
const PURGE_EVERY = 500;

export class IdempotentWrites {
  private sincePurge = 0;

  constructor(
    private readonly repo: IdempotencyRepository,
    private readonly windowSeconds: number,
  ) {}

  /**
   * Runs `write` in one transaction with the key claimed, and records its response there; a repeat of the
   * request answers from the record (with `Idempotent-Replayed: true`). An error rolls the key back with the
   * write, so a failed request may be retried with the same key.
   */
  async run(service: FhirService, request: IdempotentRequest, write: (service: FhirService) => Promise<RecordedResponse>): Promise<RecordedResponse> {
    if (!KEY.test(request.key)) throw badRequest('The Idempotency-Key header must be 1 to 255 printable ASCII characters without spaces', 'Idempotency-Key');
    const { caller, store } = service.binding;
    const scope = `${caller.clientId}|${store}`;
    const fingerprint = fingerprintOf(request);
    if (++this.sincePurge >= PURGE_EVERY) {
      this.sincePurge = 0;
      this.repo.purge(this.windowSeconds).catch(() => undefined);
    }
    return service.transaction(async (svc, tx) => {
      const claim: Claim = await this.repo.claim(tx, scope, request.key, fingerprint, this.windowSeconds);
      if (claim.kind === 'mismatch') {
        throw new OperationOutcomeError(
          422,
          operationOutcome([
            {
              severity: 'error',
              code: 'business-rule',
              diagnostics: `Idempotency-Key '${request.key}' was already used with a different request; send a new key for a new request`,
              expression: ['Idempotency-Key'],
            },
          ]),
        );
      }
      if (claim.kind === 'replay') return { ...claim.response, headers: { ...claim.response.headers, 'Idempotent-Replayed': 'true' } };
      const response = await write(svc);
      await this.repo.record(tx, scope, request.key, response);
      return response;
    }, request.items);
  }
}

function fingerprintOf(request: IdempotentRequest): string {
  const headers = MEANINGFUL_HEADERS.map((h) => [h, request.headers[h] ?? null]);
  return createHash('sha256')
    .update(JSON.stringify([request.method, request.path, request.query, headers, request.body ?? null]))
    .digest('base64url');
}
