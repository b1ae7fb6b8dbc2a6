import type { FastifyInstance } from 'fastify';

/**
 * Once the server begins to close, every answer it still sends carries `Connection: close`, so the socket of a
 * request that was in flight at SIGTERM closes with its answer. Node's `server.close()` closes the keep-alive
 * sockets that are idle when it is called and then waits for the others; a socket busy at that moment went back
 * to idle after its answer and stayed open (Fastify keeps idle sockets for 72 s), until Apollo's drain plugin
 * closed every connection after its 10 s timer. The soak saw that as a 10.2 s shutdown whenever its load had a
 * request in flight at the signal. Requests that arrive after the close began are answered 503 with
 * `Connection: close` by Fastify itself.
 */
export function installClosingConnections(app: FastifyInstance): void {
  let closing = false;
  app.addHook('preClose', (done) => {
    closing = true;
    done();
  });
  app.addHook('onSend', (request, reply, payload, done) => {
    if (closing && request.raw.httpVersionMajor === 1) reply.header('connection', 'close');
    done(null, payload);
  });
}
