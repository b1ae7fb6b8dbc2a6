import { ApolloServer, type ApolloServerPlugin } from '@apollo/server';
import { unwrapResolverError } from '@apollo/server/errors';
import { ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import { ApolloServerPluginLandingPageLocalDefault } from '@apollo/server/plugin/landingPage/default';
import fastifyApollo, { fastifyApolloDrainPlugin } from '@as-integrations/fastify';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { execute, GraphQLError, GraphQLObjectType, GraphQLSchema, parse, specifiedRules, validate, type ExecutionResult, type GraphQLFormattedError } from 'graphql';
import { badRequest, OperationOutcomeError } from '../fhir/outcome';
import type { Resource } from '../fhir/types';
import { applyOutputDirectives, usesOutputDirectives } from './directives';
import { buildFhirOnlySchema, buildFhirSchema, DIRECTIVES, type GraphqlContext } from './fhirSchema';
import { limitRule, type QueryLimits } from './limits';

/**
 * The GraphQL door: Apollo Server at /graphql, and the FHIR `$graphql` operation for the REST doors, both
 * over one schema and the same context (the caller's services). OperationOutcome errors become GraphQL
 * errors carrying the outcome in `extensions`.
 */
export interface GraphqlDoorOptions {
  limits: QueryLimits;
  introspection: boolean;
  sandbox: boolean;
}

export interface GraphqlRequest {
  query: string;
  variables?: Record<string, unknown>;
  operationName?: string | null;
}

function outcomeExtensions(err: unknown): Record<string, unknown> | undefined {
  if (!(err instanceof OperationOutcomeError)) return undefined;
  return { code: err.status === 404 || err.status === 410 ? 'NOT_FOUND' : err.status === 401 ? 'UNAUTHENTICATED' : err.status === 403 ? 'FORBIDDEN' : err.status < 500 ? 'BAD_USER_INPUT' : 'INTERNAL_SERVER_ERROR', status: err.status, outcome: err.outcome };
}

export class GraphqlDoor {
  readonly schema: GraphQLSchema;
  private readonly instanceSchemas = new Map<string, GraphQLSchema>();
  private readonly rules;

  constructor(private readonly options: GraphqlDoorOptions) {
    this.schema = buildFhirSchema();
    this.rules = [...specifiedRules, limitRule(options.limits)];
  }

  async register(app: FastifyInstance, context: (request: FastifyRequest) => Promise<GraphqlContext>): Promise<void> {
    const directivesPlugin: ApolloServerPlugin<GraphqlContext> = {
      async requestDidStart() {
        return {
          async willSendResponse({ response, document, operationName }) {
            if (response.body.kind === 'single' && document && usesOutputDirectives(document) && response.body.singleResult.data) {
              response.body.singleResult.data = applyOutputDirectives(response.body.singleResult.data, document, operationName) as Record<string, unknown>;
            }
          },
        };
      },
    };
    const apollo = new ApolloServer<GraphqlContext>({
      schema: this.schema,
      introspection: this.options.introspection,
      validationRules: [limitRule(this.options.limits)],
      plugins: [
        fastifyApolloDrainPlugin(app),
        directivesPlugin,
        this.options.sandbox ? ApolloServerPluginLandingPageLocalDefault({ embed: true }) : ApolloServerPluginLandingPageDisabled(),
      ],
      formatError: (formatted: GraphQLFormattedError, error: unknown) => {
        const extensions = outcomeExtensions(unwrapResolverError(error));
        return extensions ? { ...formatted, extensions: { ...formatted.extensions, ...extensions } } : formatted;
      },
    });
    await apollo.start();
    await app.register(fastifyApollo(apollo), {
      context: async (request) => {
        try {
          return await context(request);
        } catch (err) {
          const extensions = outcomeExtensions(err);
          if (!extensions) throw err;
          throw new GraphQLError((err as Error).message, { extensions: { ...extensions, http: { status: (err as OperationOutcomeError).status } } });
        }
      },
    });
  }

  /** The schema for an instance-level `$graphql`: the resource type itself is the query root. */
  private instanceSchema(type: string): GraphQLSchema {
    let schema = this.instanceSchemas.get(type);
    if (!schema) {
      const fhir = buildFhirOnlySchema();
      const root = fhir.getType(type);
      if (!(root instanceof GraphQLObjectType)) throw badRequest(`${type} has no GraphQL type`);
      schema = new GraphQLSchema({ query: root, types: Object.values(fhir.getTypeMap()).filter((t) => !t.name.startsWith('__') && t.name !== 'Query' && t.name !== 'Mutation'), directives: fhir.getDirectives() });
      this.instanceSchemas.set(type, schema);
    }
    return schema;
  }

  /** FHIR `$graphql` (graphql.html#invoking): system level, or instance level with the resource as root. */
  async execute(request: GraphqlRequest, context: GraphqlContext, instance?: Resource): Promise<ExecutionResult> {
    if (!request.query) throw badRequest('$graphql needs a query (the `query` parameter or a JSON body {"query": …})', 'query');
    let document;
    try {
      document = parse(request.query);
    } catch (err) {
      return { errors: [err as GraphQLError] };
    }
    const schema = instance ? this.instanceSchema(instance.resourceType) : this.schema;
    const errors = validate(schema, document, this.rules);
    if (errors.length) return { errors };
    if (instance) context.origin.set(instance, context.defaultEndpoint);
    const result = (await execute({ schema, document, rootValue: instance, contextValue: context, variableValues: request.variables, operationName: request.operationName ?? undefined })) as ExecutionResult;
    const formatted: ExecutionResult = {
      ...result,
      ...(result.errors ? { errors: result.errors.map((e) => new GraphQLError(e.message, { nodes: e.nodes, path: e.path, originalError: e.originalError, extensions: { ...e.extensions, ...outcomeExtensions(e.originalError) } })) } : {}),
    };
    if (formatted.data && usesOutputDirectives(document)) formatted.data = applyOutputDirectives(formatted.data, document, request.operationName) as Record<string, unknown>;
    return formatted;
  }
}

export { DIRECTIVES };
