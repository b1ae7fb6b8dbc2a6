import type { FastifyInstance, FastifyReply } from 'fastify';
import { bearerToken } from '../access/caller';
import { OperationOutcomeError, operationOutcome } from '../fhir/outcome';

/**
 * A per-client limit on requests in flight (issue 16): one client's burst of heavy searches cannot take every
 * pooled connection from the others. Over the limit the request is answered 429 with Retry-After before it
 * does any work. Counted per API client id (after authentication, so a forged token cannot spend another
 * client's allowance) and released when the response is done or the client goes away.
 */
export class ClientConcurrency {
  private readonly inFlight = new Map<string, number>();

  /** `max` ≤ 0: no limit. */
  constructor(private readonly max: number) {}

  /** Counts the request answered by `reply` against `clientId`; throws 429 when that client already has `max` in flight. */
  enter(clientId: string, reply: FastifyReply): void {
    if (this.max <= 0) return;
    const current = this.inFlight.get(clientId) ?? 0;
    if (current >= this.max) {
      throw new OperationOutcomeError(
        429,
        operationOutcome([
          {
            severity: 'error',
            code: 'throttled',
            diagnostics: `This client already has ${current} requests in flight, the most allowed (CLIENT_MAX_CONCURRENT); retry when one is answered`,
          },
        ]),
        { 'Retry-After': '1' },
      );
    }
    this.inFlight.set(clientId, current + 1);
    // 'close' follows 'finish', and also comes alone when the client disconnects first.
    reply.raw.once('close', () => {
      const left = (this.inFlight.get(clientId) ?? 1) - 1;
      if (left <= 0) this.inFlight.delete(clientId);
      else this.inFlight.set(clientId, left);
    });
  }

  /**
   * Counts every request with a bearer token `clientIdOf` accepts (of either family: fhir and legacy) (before its handler runs); a request whose
   * token it refuses is left to its door, which refuses it as before. Without a limit nothing is installed.
   */
  install(app: FastifyInstance, clientIdOf: (authorization: string) => string | undefined): void {
    if (this.max <= 0) return;
    app.addHook('preHandler', (request, reply, done) => {
      const header = request.headers.authorization;
      if (!header || !bearerToken(header)) return done();
      let clientId: string | undefined;
      try {
        clientId = clientIdOf(header);
      } catch {
        return done();
      }
      try {
        if (clientId !== undefined) this.enter(clientId, reply);
      } catch (err) {
        return done(err as Error);
      }
      done();
    });
  }

  /** Requests `clientId` has in flight (tests, metrics). */
  count(clientId: string): number {
    return this.inFlight.get(clientId) ?? 0;
  }
}
