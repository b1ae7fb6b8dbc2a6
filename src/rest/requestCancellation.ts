import type { FastifyInstance } from 'fastify';
import { QueryScope, inQueryScope } from '../store/queryScope';

/**
 * Ties every request's SQL to the client's connection (issue 16): when the client disconnects before its
 * answer is written, the statements it started are cancelled on the server (store/queryScope.ts, sql.ts)
 * rather than running on and holding pooled connections others wait for.
 *
 * Installed as a preHandler hook: the scope must be entered after the body is read (the body's stream
 * events run outside any request's async context) and before the handler, which runs inside it.
 */
export function installRequestCancellation(app: FastifyInstance): void {
  app.addHook('preHandler', (request, reply, done) => {
    const scope = new QueryScope(() => `The client of ${request.method} ${request.routeOptions.url ?? ''} disconnected`);
    reply.raw.once('close', () => {
      if (!reply.raw.writableFinished) scope.abort();
    });
    inQueryScope(scope, done);
  });
}
