import { ApolloServer, type ApolloServerPlugin } from '@apollo/server';
import { unwrapResolverError } from '@apollo/server/errors';
import { ApolloServerPluginCacheControlDisabled, ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import { ApolloServerPluginLandingPageLocalDefault } from '@apollo/server/plugin/landingPage/default';
import { fastifyApolloDrainPlugin, fastifyApolloHandler } from '@as-integrations/fastify';
import type { FastifyInstance, FastifyRequest, RawReplyDefaultExpression, RawRequestDefaultExpression, RawServerDefault, RouteHandlerMethod } from 'fastify';
import {
  execute,
  GraphQLError,
  GraphQLObjectType,
  GraphQLSchema,
  NoSchemaIntrospectionCustomRule,
  parse,
  specifiedRules,
  validate,
  type DocumentNode,
  type ExecutionResult,
  type GraphQLFormattedError,
} from 'graphql';
import { parseFhirJson, stringifyFhirJson } from '../fhir/losslessJson';
import { badRequest, OperationOutcomeError } from '../fhir/outcome';
import { isDatabaseUnavailable, OUTAGE_RETRY_AFTER_SECONDS, outageOrSelf } from '../store/databaseUnavailable';
import { auditUnavailable } from '../audit/auditLog';
import type { FhirVersion, Resource } from '../fhir/types';
import { applyOutputDirectives, usesOutputDirectives } from './directives';
import { DocumentCache } from './documentCache';
import { fromEndpoint, type GraphqlContext } from './context';
import { buildFhirOnlySchema, buildFhirSchema, DIRECTIVES } from './fhirSchema';
import { DEFAULT_MAX_TOKENS, limitError, type QueryLimits } from './limits';
import { noStorePlugin } from './noStorePlugin';
import { buildStu3Schema } from './stu3Schema';

/**
 * The GraphQL door: Apollo Server at /graphql, and the FHIR `$graphql` operation for the REST doors, both
 * over one schema and the same context (the caller's services). OperationOutcome errors become GraphQL
 * errors carrying the outcome in `extensions`. Both apply the same rules: the query limits, measured on
 * the operation about to run with its variables (limits.ts), and the introspection setting.
 *
 * The schema (every FHIR R4 type, ≈ 50 MB of heap with the definitions it is generated from) is built on
 * the first GraphQL request, `$graphql` or subscription, not at start: a server used only over REST never
 * holds it (issue 19, idle memory). That first request pays the build (about 1 s of CPU).
 */
export interface GraphqlDoorOptions {
  limits: QueryLimits;
  introspection: boolean;
  sandbox: boolean;
  /** Which browser page /graphql shows when `sandbox` is on; `graphiql` is the self-hosted one (offline). */
  explorer?: 'sandbox' | 'graphiql';
  /** The built GraphiQL page (src/web/webAssets.ts). */
  graphiqlHtml?: () => string | undefined;
}

const NOT_BUILT_PAGE = '<!doctype html><title>GraphQL explorer</title><p>The GraphQL explorer is not built: run <code>npm run build</code>.</p>';

/** /graphql's landing page in a browser: the self-hosted GraphiQL page, which loads nothing from elsewhere. */
function graphiqlLandingPage(html: () => string | undefined): ApolloServerPlugin<GraphqlContext> {
  return {
    async serverWillStart() {
      return {
        async renderLandingPage() {
          return { html: async () => html() ?? NOT_BUILT_PAGE };
        },
      };
    },
  };
}

export interface GraphqlRequest {
  query: string;
  variables?: Record<string, unknown>;
  operationName?: string | null;
}

/** graphql.html#errors: each error carries its OperationOutcome in `extensions.resource`. */
export function outcomeExtensions(thrown: unknown): Record<string, unknown> | undefined {
  // A database outage is answered as the REST doors answer it: a 503 OperationOutcome.
  const err = outageOrSelf(thrown);
  if (!(err instanceof OperationOutcomeError)) return undefined;
  const code =
    err.status === 404 || err.status === 410
      ? 'NOT_FOUND'
      : err.status === 401
        ? 'UNAUTHENTICATED'
        : err.status === 403
          ? 'FORBIDDEN'
          : err.status < 500
            ? 'BAD_USER_INPUT'
            : err.status === 503
              ? 'SERVICE_UNAVAILABLE'
              : 'INTERNAL_SERVER_ERROR';
  return { code, status: err.status, resource: err.outcome };
}

/** Apollo's handler for /graphql (its replies are strings). */
type GraphqlRoute = { Reply: string };
type RouteHandler = RouteHandlerMethod<RawServerDefault, RawRequestDefaultExpression, RawReplyDefaultExpression, GraphqlRoute>;

export class GraphqlDoor {
  private built?: GraphQLSchema;
  private readonly instanceSchemas = new Map<string, GraphQLSchema>();
  private readonly documents = new DocumentCache();
  /** The validation rules every door applies (the WebSocket door too, subscriptionDoor.ts). */
  readonly rules;

  constructor(private readonly options: GraphqlDoorOptions) {
    // /graphql is given the same introspection rule (register), so every door refuses alike.
    this.rules = options.introspection ? specifiedRules : [...specifiedRules, NoSchemaIntrospectionCustomRule];
  }

  /** The FHIR schema beside our own types, built on first use (buildFhirSchema builds it once per process). */
  get schema(): GraphQLSchema {
    this.built ??= buildFhirSchema();
    return this.built;
  }

  /**
   * Mounts /graphql (GET, POST, OPTIONS). Apollo Server needs the schema when it starts, so it starts with
   * the first request to /graphql (concurrent first requests wait for the same start).
   */
  async register(app: FastifyInstance, context: (request: FastifyRequest) => Promise<GraphqlContext>): Promise<void> {
    let handler: Promise<RouteHandler> | undefined;
    const started = () =>
      (handler ??= this.startApollo(app, context).catch((err: unknown) => {
        handler = undefined; // the next request tries again
        throw err;
      }));
    // Variables keep their decimals' digits too: JSON bodies of /graphql are read like FHIR's. Encapsulated,
    // so the rest of the server keeps Fastify's own JSON parser.
    await app.register(async (scope) => {
      scope.removeContentTypeParser('application/json');
      scope.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
        try {
          done(null, parseFhirJson(body as string));
        } catch (err) {
          done(Object.assign(new Error((err as Error).message), { statusCode: 400 }));
        }
      });
      scope.route<GraphqlRoute>({
        method: ['GET', 'POST', 'OPTIONS'],
        url: '/graphql',
        handler: async function (request, reply) {
          return (await started()).call(this, request, reply);
        },
      });
    });
  }

  private async startApollo(app: FastifyInstance, context: (request: FastifyRequest) => Promise<GraphqlContext>): Promise<RouteHandler> {
    const directivesPlugin: ApolloServerPlugin<GraphqlContext> = {
      async requestDidStart() {
        return {
          async willSendResponse({ response, document, operationName, request, contextValue }) {
            const result = response.body.kind === 'single' ? response.body.singleResult : undefined;
            if (!result?.data || !document || !usesOutputDirectives(document)) return;
            const shaped = applyOutputDirectives(result.data, document, { operationName, variables: request.variables, slices: contextValue.slices });
            result.data = shaped.data;
            if (shaped.errors.length) result.errors = [...(result.errors ?? []), ...shaped.errors.map((e) => e.toJSON())];
          },
        };
      },
    };
    const limits = this.options.limits;
    const limitsPlugin: ApolloServerPlugin<GraphqlContext> = {
      async requestDidStart() {
        return {
          // After validation, with the operation chosen and before anything runs.
          async didResolveOperation({ schema, document, request }) {
            const refused = limitError(limits, schema, document, request.operationName, request.variables);
            if (refused) throw new GraphQLError(refused.message, { nodes: refused.nodes, extensions: { ...refused.extensions, http: { status: 400 } } });
          },
        };
      },
    };
    // An outage met while resolving answers HTTP 503 with Retry-After, not 200 with an error in the body,
    // so clients and load balancers retry it as they retry the REST doors' 503.
    const outagePlugin: ApolloServerPlugin<GraphqlContext> = {
      async requestDidStart() {
        return {
          async didEncounterErrors({ errors, response }) {
            if (!errors.some((e) => isDatabaseUnavailable(unwrapResolverError(e)) || isDatabaseUnavailable(e.originalError))) return;
            response.http.status = 503;
            response.http.headers.set('retry-after', String(OUTAGE_RETRY_AFTER_SECONDS));
          },
        };
      },
    };
    // The request's audit events (held while it ran: audit/heldAudit.ts) are written before the response is sent;
    // when they cannot be, the answer is the audit log's error and its status (503), with no data.
    const auditPlugin: ApolloServerPlugin<GraphqlContext> = {
      async requestDidStart() {
        return {
          async willSendResponse({ response, contextValue }) {
            try {
              await contextValue.releaseAudit?.();
            } catch (err) {
              const outcome = err instanceof OperationOutcomeError ? err : auditUnavailable();
              const error = new GraphQLError(outcome.message, { extensions: outcomeExtensions(outcome) });
              response.body = { kind: 'single', singleResult: { errors: [error.toJSON()] } };
              response.http.status = outcome.status;
              for (const [name, value] of Object.entries(outcome.headers)) response.http.headers.set(name, String(value));
            }
          },
        };
      },
    };
    const apollo = new ApolloServer<GraphqlContext>({
      schema: this.schema,
      // FHIR decimals keep their digits (DecimalScalar).
      stringifyResult: (result) => stringifyFhirJson(result),
      // Introspection is refused by the same graphql-js rule as in `$graphql` (this.rules), so every door
      // answers with the same error; Apollo's own switch would add a differently worded one.
      introspection: true,
      // A document over the token limit is refused while it is parsed (a syntax error naming the limit).
      parseOptions: { maxTokens: limits.maxTokens ?? DEFAULT_MAX_TOKENS },
      validationRules: this.options.introspection ? [] : [NoSchemaIntrospectionCustomRule],
      plugins: [
        auditPlugin,
        fastifyApolloDrainPlugin(app),
        limitsPlugin,
        outagePlugin,
        directivesPlugin,
        // No per-field plugin hooks: with one, Apollo wraps every resolver (see noStorePlugin.ts).
        ApolloServerPluginCacheControlDisabled(),
        noStorePlugin,
        this.landingPage(),
      ],
      formatError: (formatted: GraphQLFormattedError, error: unknown) => {
        const extensions = outcomeExtensions(unwrapResolverError(error));
        return extensions ? { ...formatted, extensions: { ...formatted.extensions, ...extensions } } : formatted;
      },
    });
    await apollo.start();
    return fastifyApolloHandler(apollo, {
      context: async (request) => {
        try {
          return await context(request);
        } catch (err) {
          const extensions = outcomeExtensions(err);
          if (!extensions) throw err;
          const outcome = outageOrSelf(err) as OperationOutcomeError;
          throw new GraphQLError(outcome.message, { extensions: { ...extensions, http: { status: outcome.status, headers: new Map(Object.entries(outcome.headers)) } } });
        }
      },
    });
  }

  private landingPage(): ApolloServerPlugin<GraphqlContext> {
    if (!this.options.sandbox) return ApolloServerPluginLandingPageDisabled();
    if (this.options.explorer === 'graphiql') return graphiqlLandingPage(this.options.graphiqlHtml ?? (() => undefined));
    return ApolloServerPluginLandingPageLocalDefault({ embed: true });
  }

  /** The schema for an instance-level `$graphql`: the resource type itself (of the endpoint's version) is the query root. */
  private instanceSchema(type: string, version: FhirVersion): GraphQLSchema {
    const key = `${version}/${type}`;
    let schema = this.instanceSchemas.get(key);
    if (!schema) {
      const fhir = buildFhirOnlySchema(version);
      const root = fhir.getType(type);
      if (!(root instanceof GraphQLObjectType)) throw badRequest(`${type} has no GraphQL type`);
      schema = new GraphQLSchema({
        query: root,
        types: Object.values(fhir.getTypeMap()).filter((t) => !t.name.startsWith('__') && t.name !== 'Query' && t.name !== 'Mutation'),
        directives: fhir.getDirectives(),
      });
      this.instanceSchemas.set(key, schema);
    }
    return schema;
  }

  /** The query parsed and validated against `schema` (named `schemaKey`), or why it cannot run. */
  private validDocument(schema: GraphQLSchema, schemaKey: string, query: string): { document: DocumentNode } | { errors: readonly GraphQLError[] } {
    const known = this.documents.get(schemaKey, query);
    if (known) return { document: known };
    let document;
    try {
      document = parse(query, { maxTokens: this.options.limits.maxTokens ?? DEFAULT_MAX_TOKENS });
    } catch (err) {
      return { errors: [err as GraphQLError] };
    }
    const errors = validate(schema, document, this.rules);
    // The code Apollo gives the same errors at /graphql.
    if (errors.length) return { errors: errors.map((e) => new GraphQLError(e.message, { nodes: e.nodes, extensions: { ...e.extensions, code: 'GRAPHQL_VALIDATION_FAILED' } })) };
    this.documents.set(schemaKey, query, document);
    return { document };
  }

  /** FHIR `$graphql` (graphql.html#invoking): system level, or instance level with the resource as root. */
  async execute(request: GraphqlRequest, context: GraphqlContext, instance?: Resource): Promise<ExecutionResult> {
    if (!request.query) throw badRequest('$graphql needs a query (the `query` parameter or a JSON body {"query": …})', 'query');
    // An STU3 endpoint's `$graphql`, system or instance level, answers in STU3's shapes (stu3Schema.ts).
    const version = context.fhirVersion ?? 'R4';
    const schema = instance ? this.instanceSchema(instance.resourceType, version) : version === 'STU3' ? buildStu3Schema() : this.schema;
    const checked = this.validDocument(schema, instance ? `${version}/${instance.resourceType}` : version === 'STU3' ? 'STU3' : '', request.query);
    if ('errors' in checked) return { errors: checked.errors };
    const { document } = checked;
    const refused = limitError(this.options.limits, schema, document, request.operationName, request.variables);
    if (refused) return { errors: [refused] };
    if (instance) fromEndpoint(context, instance, context.defaultEndpoint);
    let result: ExecutionResult;
    try {
      result = (await execute({
        schema,
        document,
        rootValue: instance,
        contextValue: context,
        variableValues: request.variables,
        operationName: request.operationName ?? undefined,
      })) as ExecutionResult;
    } finally {
      // The request's audit events are written before anything is answered; if they cannot be, the log's 503 is the answer.
      await context.releaseAudit?.();
    }
    // An outage (or another 503: a search timed out) met while resolving is the operation's answer (503 +
    // Retry-After + OperationOutcome, as on every FHIR door), not a 200 with the error inside, which clients would not retry.
    const outage = result.errors?.find((e) => isDatabaseUnavailable(e.originalError) || (e.originalError instanceof OperationOutcomeError && e.originalError.status === 503));
    if (outage) throw outageOrSelf(outage.originalError);
    const formatted: ExecutionResult = {
      ...result,
      ...(result.errors
        ? {
            errors: result.errors.map(
              (e) =>
                new GraphQLError(e.message, {
                  nodes: e.nodes,
                  path: e.path,
                  originalError: e.originalError,
                  extensions: { ...e.extensions, ...outcomeExtensions(e.originalError) },
                }),
            ),
          }
        : {}),
    };
    if (formatted.data && usesOutputDirectives(document)) {
      const shaped = applyOutputDirectives(formatted.data, document, { operationName: request.operationName, variables: request.variables, slices: context.slices });
      formatted.data = shaped.data;
      if (shaped.errors.length) formatted.errors = [...(formatted.errors ?? []), ...shaped.errors];
    }
    return formatted;
  }
}

export { DIRECTIVES };
