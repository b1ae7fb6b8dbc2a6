import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { GraphQLError, parse, validate, type DocumentNode, type GraphQLFormattedError, type GraphQLSchema, type ValidationRule } from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocketServer } from 'ws';
import type { Caller } from '../access/caller';
import type { GraphqlContext } from './context';
import { outcomeExtensions } from './graphqlDoor';
import { limitError, type QueryLimits } from './limits';

/**
 * The WebSocket half of /graphql (issue 18): the graphql-ws protocol on the same path as Apollo's HTTP door,
 * over the same schema, validation rules and query limits. The connection is authenticated once, from its
 * `connectionParams.Authorization` (a browser WebSocket cannot send headers), with the same tokens as HTTP;
 * the caller is then kept for the connection and every event is authorised again (src/live/liveRecord.ts).
 * A connection whose token expires is closed (4401), so the client reconnects with a fresh one.
 */
export interface SubscriptionDoorOptions {
  /** The schema, asked for on the first subscription (the door builds it on first use, graphqlDoor.ts). */
  schema: () => GraphQLSchema;
  rules: readonly ValidationRule[];
  limits: QueryLimits;
  /** The caller of an `Authorization` value; throws (an OperationOutcomeError) when there is none valid. */
  authenticate(authorization: string | undefined): Caller;
  /** A fresh context for one operation of the caller. */
  context(caller: Caller): GraphqlContext;
  path?: string;
}

/** An error as the HTTP door formats it: a refusal carries its code and OperationOutcome (graphql.html#errors). */
function formatted(error: GraphQLError): GraphQLFormattedError {
  const plain = error.toJSON();
  const extensions = outcomeExtensions(error.originalError);
  return extensions ? { ...plain, extensions: { ...plain.extensions, ...extensions } } : plain;
}

type ConnectionExtra = {
  caller?: Caller;
  expiry?: NodeJS.Timeout;
};

/** `connectionParams.Authorization` (or `authorization`), as the HTTP header would carry it. */
function authorizationParam(params: Readonly<Record<string, unknown>> | undefined): string | undefined {
  const value = params?.Authorization ?? params?.authorization;
  return typeof value === 'string' ? value : undefined;
}

export function mountSubscriptions(app: FastifyInstance, options: SubscriptionDoorOptions): void {
  const path = options.path ?? '/graphql';
  const wss = new WebSocketServer({ noServer: true, maxPayload: 1024 * 1024 });
  app.server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    if (new URL(request.url ?? '/', 'http://localhost').pathname !== path) {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n');
      return;
    }
    wss.handleUpgrade(request, socket, head, (ws) => wss.emit('connection', ws, request));
  });

  const documents = new Map<string, DocumentNode>();
  const server = useServer<Record<string, unknown>, ConnectionExtra>(
    {
      onConnect(ctx) {
        try {
          const caller = { ...options.authenticate(authorizationParam(ctx.connectionParams)), address: ctx.extra.request.socket.remoteAddress };
          ctx.extra.caller = caller;
          if (caller.expiresAt !== undefined) {
            const ms = Math.max(0, caller.expiresAt * 1000 - Date.now());
            // setTimeout's ceiling is about 24.8 days; a token living longer is closed then and reconnects.
            ctx.extra.expiry = setTimeout(() => ctx.extra.socket.close(4401, 'The access token has expired'), Math.min(ms, 2 ** 31 - 1));
            ctx.extra.expiry.unref();
          }
          return true;
        } catch {
          // 4403 Forbidden: graphql-ws's answer to a refused connection; the client does not retry it.
          return false;
        }
      },
      // A subscription refused when it starts (scope, access, bad criteria) is told why as /graphql over HTTP would.
      onNext(_ctx, _id, _payload, _args, result) {
        if (result.errors?.length) return { ...result, errors: result.errors.map(formatted) };
      },
      onError(_ctx, _id, _payload, errors) {
        return errors.map(formatted);
      },
      onClose(ctx) {
        clearTimeout(ctx.extra.expiry);
      },
      onSubscribe(ctx, _id, payload) {
        const caller = ctx.extra.caller as Caller;
        const schema = options.schema();
        let document = documents.get(payload.query);
        if (!document) {
          try {
            document = parse(payload.query);
          } catch (err) {
            return [err as GraphQLError];
          }
          const errors = validate(schema, document, options.rules);
          if (errors.length) return errors;
          if (documents.size > 500) documents.clear();
          documents.set(payload.query, document);
        }
        const refused = limitError(options.limits, schema, document, payload.operationName, payload.variables ?? undefined);
        if (refused) return [refused];
        return {
          schema,
          document,
          operationName: payload.operationName,
          variableValues: payload.variables,
          contextValue: options.context(caller),
        };
      },
    },
    wss,
  );
  app.addHook('onClose', async () => {
    await server.dispose();
    wss.close();
  });
}
