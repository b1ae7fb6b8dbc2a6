import path from 'node:path';
import cors from '@fastify/cors';
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import { isAdminToken } from './access/adminCredential';
import { bearerToken, type Caller } from './access/caller';
import { AdminService } from './admin/adminService';
import { AuditLog, type AuditSink, NO_AUDIT } from './audit/auditLog';
import { auditQueryOf, AuditSearch, summarise } from './audit/auditSearch';
import { HeldAudit } from './audit/heldAudit';
import { RevokedClients } from './access/revokedClients';
import { AggregationViews } from './aggregator/views';
import { adminOps } from './graphql/adminOps';
import type { GraphqlContext } from './graphql/fhirSchema';
import { GraphqlDoor, type GraphqlRequest } from './graphql/graphqlDoor';
import { createLoaders } from './graphql/loaders';
import { serviceSource } from './graphql/serviceSource';
import { withCostBudget } from './graphql/costBudget';
import { AssertionJtis } from './access/assertionJtis';
import { SharedFailedAuthentications } from './access/failedAuthentications';
import type { TokenService } from './access/tokens';
import type { Config } from './config';
import { capabilityStatement, OPERATIONS } from './fhir/capabilityStatement';
import { isResourceType, resourceTypes } from './fhir/definitions';
import { badRequest, notFound, OperationOutcomeError, operationOutcome, payloadTooLarge, unauthorized, unsupportedMediaType } from './fhir/outcome';
import type { FhirVersion, Resource } from './fhir/types';
import { assertValidResource } from './fhir/validation';
import { corsOptions } from './rest/corsOptions';
import { drainRequest } from './rest/bodyLimits';
import { clientErrorHandler } from './rest/clientErrors';
import { installRequestCancellation } from './rest/requestCancellation';
import { installClosingConnections } from './ops/closingConnections';
import { ClientConcurrency } from './ops/clientConcurrency';
import { customerRoutes } from './rest/customerRoutes';
import { installFhirParsers, mountFhir, sendOutcome } from './rest/fastifyFhir';
import type { EndpointContext } from './rest/interactions';
import { adminRoutes } from './rest/adminRoutes';
import { oauthRoutes } from './rest/oauthRoutes';
import { NhsLoginIdTokens } from './access/nhsLoginIdTokens';
import { patientsByNhsNumber } from './aggregator/patientsByNhsNumber';
import { Authorization } from './service/authorization';
import { AggregatedReads } from './service/aggregatedReads';
import { ReplicaReads } from './store/replicaReads';
import type { FhirServiceDeps } from './service/fhirService';
import type { ResourceValidator, SearchPort } from './service/ports';
import type { Database } from './store/db';
import { ResourceRepository } from './store/resourceRepository';
import { createSearchIndexer } from './search/indexer';
import { SearchService } from './search/searchService';
import { searchParametersFor } from './fhir/searchParameters';
import { TtlCache } from './store/ttlCache';
import { accessFilter as accessFilterFor, CallerAccessLoader } from './aggregator/access';
import { BreakGlass } from './consent/breakGlass';
import { ConsentRegistry } from './consent/consentRegistry';
import { PatientControls } from './consent/patientControls';
import { BacklogAdmission } from './aggregator/admission';
import { Aggregator } from './aggregator/aggregator';
import { createOutboxHook, requeueStore } from './aggregator/outbox';
import { aggregationReport } from './aggregator/report';
import { recordedAggregatedTypes, recordedTypesNote } from './aggregator/recordedAggregatedTypes';
import { createRecordChangeHook } from './aggregator/recordChanges';
import { aggregationStatus } from './aggregator/status';
import { ThreadedAggregationWorker } from './aggregator/threadedWorker';
import { AggregationWorker } from './aggregator/worker';
import { aggregatedRoutes, type AggregatedContext } from './rest/aggregatedRoutes';
import { mountBulkExport } from './rest/bulkExportRoutes';
import { BulkExport } from './service/bulkExport';
import { ExportJobRepository } from './store/exportJobRepository';
import { wellKnownRoutes } from './rest/wellKnownRoutes';
import type { TenancyRepository } from './store/tenancyRepository';
import { Metrics } from './ops/metrics';
import { mountMetrics } from './ops/metricsEndpoint';
import { ReadinessCheck, within } from './ops/readiness';
import { logFailedItem } from './ops/logger';
import { requestLogOptions } from './ops/requestLog';
import type { DestinationStream } from 'pino';
import { databaseUnavailable, isDatabaseUnavailable } from './store/databaseUnavailable';
import { IdempotencyRepository } from './store/idempotencyRepository';
import { IdempotentWrites } from './service/idempotentWrites';
import { idempotentRoutes } from './rest/idempotentRoutes';
import { FACADE_TYPES, r4SearchParam } from './facade/r4ToStu3';
import { FileMailer, InvitationOutbox, type Mailer } from './native/invitationMailer';
import { NativeRecord } from './native/nativeRecord';
import { demographicsRoutes, type DemographicsContext } from './rest/demographicsRoutes';
import { facadeRoutes, type FacadeContext } from './rest/facadeRoutes';
import { mountWebPages } from './web/webAssets';
import { LiveRecord } from './live/liveRecord';
import { mountSubscriptions } from './graphql/subscriptionDoor';

export interface AppDeps {
  config: Config;
  db: Database;
  tenancy: TenancyRepository;
  tokens: TokenService;
  adminToken: string;
  /** Where the server's log lines go (stdout when absent); tests read them. */
  logStream?: DestinationStream;
  /** Delivers registration invitations (issue 14); default: files under `$DATA_DIR/mail`. */
  mailer?: Mailer;
}

export const SOFTWARE = { name: 'Tributary', version: '0.1.0' };

const validator: ResourceValidator = {
  assertValid(version: FhirVersion, resource: unknown, expectedType?: string): asserts resource is Resource {
    assertValidResource(version, resource, expectedType);
  },
  isResourceType,
};

/** Wiring only: builds the store, the services and the doors, and hands back a Fastify app ready to listen. */
export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const { config, db, tenancy, tokens } = deps;
  const search: SearchPort = new SearchService(db.sql, { timeoutMs: config.searchTimeoutMs, shardedIndex: config.citus });
  const repo = new ResourceRepository(db.sql, [createSearchIndexer({ shardedIndex: config.citus }), createOutboxHook(), createRecordChangeHook()]);
  // Customer writes feed the aggregation: they are admitted at the pace its workers keep (admission.ts).
  // The in-process worker and the admission wake each other (a committed write, a committed batch) rather
  // than each polling for the other's progress.
  const admission =
    config.aggregationMaxBacklog > 0
      ? new BacklogAdmission(db.sql, { maxBacklog: config.aggregationMaxBacklog, maxWaitMs: config.aggregationAdmitWaitMs, onReleased: () => worker.notify() })
      : undefined;
  // With a streaming replica (DATABASE_REPLICA_URL), each committed write notes its WAL position for its
  // client, so that client's aggregated reads wait for the replica to replay it (store/replicaReads.ts).
  const replicaReads = db.replica ? new ReplicaReads(db.sql, db.replica, config.replicaMaxWaitMs) : undefined;
  const serviceDeps: FhirServiceDeps = {
    repo,
    validator,
    search,
    admission,
    reports: { report: (store, types) => aggregationReport(db.sql, store, types) },
    ...(replicaReads
      ? { committed: (caller) => replicaReads.written(caller.clientId).catch((err) => app.log.warn({ err }, 'the write position for the replica could not be read')) }
      : {}),
  };
  const aggregatedReads =
    replicaReads && db.replica
      ? new AggregatedReads({
          primary: serviceDeps,
          // Read-only on the replica: no write hooks, no admission, no report (the aggregated record has none).
          replica: { repo: new ResourceRepository(db.replica), validator, search: new SearchService(db.replica, { timeoutMs: config.searchTimeoutMs }) },
          reads: replicaReads,
          onRoute: (target, reason) => metrics.aggregatedRead(target, reason),
        })
      : undefined;
  const idempotentWrites = new IdempotentWrites(new IdempotencyRepository(db.sql), config.idempotencyWindowSeconds);
  // The aggregated types are the database's, not this process's: a list that differs from the recorded one
  // is refused here, before anything is served or aggregated (recordedAggregatedTypes.ts).
  const recordedTypes = await recordedAggregatedTypes(db.sql, config.aggregatedTypes, { applyChange: config.applyAggregatedTypesChange });
  const aggregator = new Aggregator(repo, config.aggregatedTypes);
  // Every read, search, history, write, token and consent change is audited unless AUDIT=off (src/audit/).
  const audit: AuditSink = config.audit
    ? new AuditLog(db.sql, { serverUrl: () => config.publicUrl, onError: (err) => app.log.error({ err }, 'the audit log could not be written; requests are refused') })
    : NO_AUDIT;
  const auditEvents = new AuditSearch(db.sql);
  /** A GraphQL request's audit events, held until its response (audit/heldAudit.ts); none with the log off. */
  const heldAudit = (): HeldAudit | undefined => (audit.enabled ? new HeldAudit(audit) : undefined);
  // Read per request, never cached: a grant, revoke or freeze counts on the next request.
  const callerAccess = new CallerAccessLoader(db.sql);
  const grants = new ConsentRegistry(db.sql, repo, audit, replicaReads && (() => replicaReads.accessChanged()));
  const breakGlass = new BreakGlass({ sql: db.sql, repo, tokens, seconds: config.breakGlassSeconds, audit });
  const patientControls = new PatientControls({ consents: grants, breakGlass });
  // Registration invitations the native record queued: delivered after each commit, and at start for any a
  // crash or a failing mailer left unsent (src/native/invitationMailer.ts).
  const invitations = new InvitationOutbox(db.sql, deps.mailer ?? new FileMailer(path.join(config.dataDir, 'mail')), (err) =>
    app.log.warn({ err }, 'a registration invitation could not be delivered; it stays queued'),
  );

  const app = Fastify({
    // Request URLs are logged with credential-like query parameters redacted (requestLog.ts).
    logger: requestLogOptions(config.logLevel, deps.logStream),
    bodyLimit: config.bodyLimit,
    // Whose X-Forwarded-For names the client (TRUST_PROXY): believed from anyone, it would let a guesser pick a
    // fresh address for every guess and never meet the per-address lockout.
    trustProxy: config.trustProxy,
    // A URL the router cannot decode (malformed percent-encoding) is the client's mistake, answered in FHIR's terms.
    frameworkErrors: (err, request, reply) => sendOutcome(reply, badRequest(`The request URL is malformed: ${err.message}`)),
    // Requests the HTTP parser refuses (URL and headers over 16 KB: 431) still get an OperationOutcome, delivered.
    clientErrorHandler,
  });
  const typesNote = recordedTypesNote(recordedTypes, config.aggregatedTypes);
  if (typesNote) app.log[typesNote.level](typesNote.message);
  // Before every route, so preflights and error responses carry the headers too.
  await app.register(cors, corsOptions(config.corsOrigins));

  app.setErrorHandler((err: Error, request, reply) => {
    if (err instanceof OperationOutcomeError) return sendOutcome(reply, err);
    const code = (err as { code?: string }).code;
    if (code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      // The client may still be sending: read the rest (up to 4× the limit) so that it gets the 413, not a broken pipe.
      return drainRequest(request.raw, 4 * config.bodyLimit).then(() =>
        sendOutcome(reply, payloadTooLarge(`The body is larger than the ${config.bodyLimit}-byte limit (BODY_LIMIT_BYTES)`)),
      );
    }
    if (code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
      return sendOutcome(reply, unsupportedMediaType(`Content-Type '${request.headers['content-type']}' is not supported: send application/fhir+json`));
    }
    const status = (err as { statusCode?: number }).statusCode;
    if (status && status >= 400 && status < 500) {
      return sendOutcome(reply, new OperationOutcomeError(status, operationOutcome([{ severity: 'error', code: 'invalid', diagnostics: (err as Error).message }])));
    }
    // A database outage is the store's, not a bug: 503 with Retry-After (databaseUnavailable.ts).
    if (isDatabaseUnavailable(err)) {
      request.log.warn({ err: err.message }, 'database unavailable');
      return sendOutcome(reply, databaseUnavailable());
    }
    request.log.error(err);
    return sendOutcome(reply, new OperationOutcomeError(500, operationOutcome([{ severity: 'error', code: 'exception', diagnostics: 'Internal server error' }])));
  });
  // Statements of a request whose client went away are cancelled (requestCancellation.ts).
  installRequestCancellation(app);
  installClosingConnections(app);
  app.setNotFoundHandler((request, reply) => sendOutcome(reply, notFound(`No route for ${request.method} ${request.url.split('?')[0]}`)));

  // Requests by route pattern (bounded label set), status and latency; unmatched URLs share one label.
  const metrics = new Metrics({ lag: () => worker.lag(), pool: () => db.sql.poolStats?.() });
  app.addHook('onClose', async () => metrics.close());
  // Requests in flight: how many a drain at shutdown still has to finish ('close' comes for answered and lost ones alike).
  // Callback hooks, not async ones: they run on every request, and an async hook costs a promise each time.
  app.addHook('onRequest', (_request, reply, done) => {
    reply.raw.once('close', metrics.requestBegun());
    done();
  });
  app.addHook('onResponse', (request, reply, done) => {
    metrics.observeRequest(request.method, request.routeOptions.url ?? '(unmatched)', reply.statusCode, reply.elapsedTime / 1000);
    done();
  });

  const concurrency = config.aggregationConcurrency ?? (db.kind === 'postgres' ? 2 : 1);
  const worker =
    db.url && config.aggregationThread
      ? new ThreadedAggregationWorker(db.sql, {
          databaseUrl: db.url,
          poolSize: concurrency + 1,
          concurrency,
          shardedIndex: config.citus,
          aggregatedTypes: config.aggregatedTypes,
          batchSize: config.aggregationBatchSize,
          onBatchError: (message) => {
            metrics.aggregationBatchFailed();
            app.log.warn({ err: message }, 'aggregation batch failed; it will be retried');
          },
          onItemFailed: (failure) => logFailedItem(app.log, failure),
          onBatchDone: (items) => {
            metrics.aggregatedItems(items);
            admission?.nudge();
          },
          onThreadError: (err) => app.log.error({ err }, 'aggregation thread failed; it is restarted'),
        })
      : new AggregationWorker(db.sql, aggregator, {
          concurrency,
          batchSize: config.aggregationBatchSize,
          onBatchError: (err) => {
            metrics.aggregationBatchFailed();
            app.log.warn({ err }, 'aggregation batch failed; it will be retried');
          },
          onItemFailed: (failure) => logFailedItem(app.log, failure),
          onBatchDone: (items) => {
            metrics.aggregatedItems(items);
            admission?.nudge();
          },
        });
  if (config.aggregationWorker) worker.start();
  app.addHook('onClose', async () => worker.stop());
  // Liveness answers without the database (an outage must not get a healthy process restarted); readiness asks it.
  app.get('/healthz', async () => ({ status: 'ok', store: db.kind, aggregation: await within(worker.lag(), 1000).catch(() => null) }));
  if (replicaReads) {
    await replicaReads.start(db);
    app.addHook('onClose', async () => replicaReads.stop());
  }
  const readiness = new ReadinessCheck({
    sql: db.sql,
    workerAlive: config.aggregationWorker ? () => worker.alive : undefined,
    replica: replicaReads && (() => replicaReads.lag()),
  });
  app.get('/readyz', async (_request, reply) => {
    const result = await readiness.check();
    return reply.code(result.ready ? 200 : 503).send(result);
  });
  mountMetrics(app, { metrics, metricsToken: config.metricsToken, adminToken: deps.adminToken, port: config.metricsPort, host: config.host });
  const nhsLogin = config.nhsLogin ? { idTokens: await NhsLoginIdTokens.create(config.nhsLogin), patientsByNhsNumber: patientsByNhsNumber(db.sql) } : undefined;
  const failures = new SharedFailedAuthentications(db.sql, config.authFailures);
  await app.register(oauthRoutes({ tenancy, tokens, jtis: new AssertionJtis(db.sql), publicUrl: () => config.publicUrl, nhsLogin, audit, breakGlass, failures }));
  await app.register(wellKnownRoutes({ tokens, publicUrl: () => config.publicUrl }));
  // Endpoints never change owner or FHIR version, so a short-lived cache is safe and saves a query per request;
  // the admin service drops an endpoint it changed (disabled, …), so this process sees it on the next request.
  const endpoints = new TtlCache((id: string) => tenancy.getEndpoint(id), 30_000);
  const admin = new AdminService({
    tenancy,
    grants,
    breakGlassEvents: (patientId) => breakGlass.list(patientId),
    tokens,
    requeueEndpoint: (id) => requeueStore(db.sql, id),
    onEndpointChanged: (id) => endpoints.delete(id),
    aggregation: worker,
    aggregationReport: (id) => aggregationReport(db.sql, id),
    analyze: async () => void (await db.sql.execute('ANALYZE')),
    auditEvents,
  });
  await app.register(adminRoutes({ admin, adminToken: deps.adminToken, publicUrl: config.publicUrl }));

  const capabilityCache = new Map<string, Resource>();
  const customerCapability = (version: FhirVersion, baseUrl: string): Resource => {
    const key = `${version}|${baseUrl}`;
    let statement = capabilityCache.get(key);
    if (!statement) {
      statement = capabilityStatement({
        fhirVersion: version,
        baseUrl,
        name: 'TributaryCustomerEndpoint',
        title: 'Tributary customer FHIR endpoint',
        kind: 'customer',
        resourceTypes: resourceTypes(version),
        interactions: ['read', 'vread', 'update', 'patch', 'delete', 'history-instance', 'history-type', 'create', 'search-type'],
        systemInteractions: ['transaction', 'batch', 'history-system', 'search-system'],
        searchParams: (type) => searchParametersFor(version, type),
        conditional: { create: true, update: true, delete: 'single', read: 'full-support' },
        security: { oauthTokenUrl: `${config.publicUrl}/oauth2/token`, cors: config.corsOrigins.length > 0 },
        software: SOFTWARE,
        operations: [OPERATIONS.graphql],
      }) as Resource;
      capabilityCache.set(key, statement);
    }
    return statement;
  };

  // The one authorisation point: every door gets the caller and its services from here (authorization.ts).
  const revoked = new RevokedClients(db);
  await revoked.start();
  app.addHook('onClose', async () => revoked.stop());
  tenancy.onClientRevoked((clientId) => revoked.revoked(clientId));
  // An organisation's public id never changes; a disabled one is refused by `revoked` before this is asked.
  const organizationPublicIds = new TtlCache(async (id: string) => (await tenancy.organizations.getOrganization(id))?.publicId ?? null, 600_000);
  const authorization = new Authorization({
    services: serviceDeps,
    tokens,
    revoked,
    endpoint: (id) => endpoints.get(id),
    organizationPublicId: (id) => organizationPublicIds.get(id),
    aggregatedFilter: async (caller) => accessFilterFor(await callerAccess.load(caller)),
    supported: aggregator.supported,
    publicUrl: () => config.publicUrl,
    audit,
    aggregatedReads,
    nativeRecord: async (caller, organizationId) => {
      const organization = await tenancy.organizations.getOrganization(organizationId);
      if (!organization) throw notFound(`No organisation '${organizationId}'`);
      const onChange = () => {
        worker.notify();
        void serviceDeps.committed?.(caller);
      };
      return new NativeRecord({ sql: db.sql, repo, invitations, onChange, audit }, organization, caller);
    },
  });
  // One client's burst cannot take every connection from the others (issue 16 item 2, clientConcurrency.ts).
  new ClientConcurrency(config.clientMaxConcurrent).install(app, (header) => authorization.clientIdOf(header));
  const callerOf = (request: FastifyRequest): Promise<Caller> => authorization.authenticateRequest(request.headers.authorization, request.ip);
  // The browser pages (src/web/): /app, and /graphiql unless the GraphQL pages are switched off.
  const webPages = mountWebPages(app, { explorer: config.graphql.sandbox });
  const graphqlDoor = new GraphqlDoor({
    limits: config.graphql,
    introspection: config.graphql.introspection,
    sandbox: config.graphql.sandbox,
    explorer: config.graphql.explorer,
    graphiqlHtml: () => webPages.graphiqlHtml(),
  });
  const views = new AggregationViews(db.sql);
  /**
   * `held`: the request's audit events go there and are written just before its response (`releaseAudit`); the
   * HTTP doors pass one, a graphql-ws connection (long-lived, with no one response to wait on) does not.
   */
  const graphqlContext = (
    caller: Caller,
    { defaultEndpoint, fhirVersion, held }: { defaultEndpoint?: string; fhirVersion?: FhirVersion; held?: HeldAudit } = {},
  ): GraphqlContext => {
    // Every GraphQL door's data source counts what it fetches against the cost limit (costBudget.ts).
    const source = withCostBudget(serviceSource(authorization.for(caller, held)), config.graphql.maxCost);
    return {
      ...(held ? { releaseAudit: () => held.release() } : {}),
      source,
      loaders: createLoaders(source),
      origin: new WeakMap(),
      defaultEndpoint,
      fhirVersion,
      native: () => authorization.native(caller),
      // A patient-scoped caller may list who accessed its own record (and nobody else's).
      audit: caller.patientId
        ? {
            myRecordAccess: async (count) => (await auditEvents.find(auditQueryOf({ patient: caller.patientId, ...(count ? { _count: String(count) } : {}) }))).rows.map(summarise),
          }
        : undefined,
      consent: patientControls.for(caller),
      aggregation: {
        // The same checks as REST: the caller must be able to read the aggregated resource / own the endpoint.
        aggregation: async (type, id) => {
          await source.read(type, id);
          return views.view(type, id, caller.customerId);
        },
        report: async (endpointId) => (await authorization.customer(caller, endpointId)).service.aggregationReport(),
        status: async (endpointId, type, id) => {
          await (await authorization.customer(caller, endpointId)).service.read(type, id);
          return (await views.status(endpointId, type, id)) ?? { status: 'pending', reason: null, expression: null, aggregatedId: null };
        },
      },
    };
  };
  const adminContext = (): GraphqlContext => {
    const refuse = async (): Promise<never> => {
      throw unauthorized('The admin token cannot read FHIR data: use a token from /oauth2/token');
    };
    const source = { read: refuse, readMany: refuse, search: refuse, create: refuse, update: refuse, delete: refuse };
    const adminCaller: Caller = { family: 'admin', clientId: 'admin', scopes: [], admin: true };
    return {
      source,
      loaders: createLoaders(source),
      origin: new WeakMap(),
      admin: adminOps(admin),
      audit: { auditEvents: async (args) => (await admin.auditEvents(args)).map(summarise) },
      consent: patientControls.for(adminCaller),
    };
  };
  // The live record (issue 18): subscriptions over graphql-ws on /graphql, each event authorised as its caller.
  const liveRecord = new LiveRecord(db, (caller) => authorization.aggregatedNow(caller));
  await liveRecord.start();
  app.addHook('onClose', async () => liveRecord.stop());
  mountSubscriptions(app, {
    schema: () => graphqlDoor.schema,
    rules: graphqlDoor.rules,
    limits: config.graphql,
    authenticate: (header) => authorization.authenticate(header),
    context: (caller) => ({
      ...graphqlContext(caller),
      live: {
        patientRecordChanged: (patient, since) => liveRecord.subscribe(caller, { patient }, since),
        resourceChanged: (type, criteria, since) => liveRecord.subscribe(caller, { type, criteria }, since),
      },
    }),
  });
  await graphqlDoor.register(app, async (request) => {
    const token = bearerToken(request.headers.authorization);
    if (token && isAdminToken(token, deps.adminToken)) return adminContext();
    return graphqlContext(await callerOf(request), { held: heldAudit() });
  });

  await app.register(async (scope) => {
    installFhirParsers(scope, config.bodyLimit, config.maxBodyDepth);
    mountFhir<EndpointContext>(scope, {
      prefix: '/fhir/customer/:endpointId',
      // Writes and Bundles sent with an Idempotency-Key answer a retry with the first response (idempotentWrites.ts).
      routes: idempotentRoutes(customerRoutes(), idempotentWrites),
      // No token needed (FHIR clients read it before they authenticate). Endpoint ids are random (80 bits),
      // so answering for existing ones only tells a caller about an id it already holds; it gets the
      // endpoint's own statement, with its FHIR version.
      metadata: async (request: FastifyRequest) => {
        const { endpointId } = request.params as { endpointId: string };
        const endpoint = await endpoints.get(endpointId);
        if (!endpoint) throw notFound(`No FHIR endpoint '${endpointId}'`);
        return customerCapability(endpoint.fhirVersion as FhirVersion, `${config.publicUrl}/fhir/customer/${endpoint.id}`);
      },
      fhirVersion: (ctx) => ctx.fhirVersion ?? 'R4',
      context: async (request: FastifyRequest) => {
        const caller = await callerOf(request);
        const { endpointId } = request.params as { endpointId: string };
        const { endpoint, service, baseUrl } = await authorization.customer(caller, endpointId);
        return {
          service,
          baseUrl,
          fhirVersion: endpoint.fhirVersion as FhirVersion,
          bundleMaxEntries: config.bundleMaxEntries,
          aggregationStatus: (type: string, id: string) => aggregationStatus(db.sql, endpoint.id, type, id),
          graphql: (req: GraphqlRequest, instance?: Resource) =>
            graphqlDoor.execute(req, graphqlContext(caller, { defaultEndpoint: endpoint.id, fhirVersion: endpoint.fhirVersion as FhirVersion, held: heldAudit() }), instance),
        };
      },
    });

    const aggregatedBase = `${config.publicUrl}/fhir/aggregated`;
    let aggregatedStatement: Resource | undefined;
    const aggregatedCapability = (): Resource =>
      (aggregatedStatement ??= capabilityStatement({
        fhirVersion: 'R4',
        baseUrl: aggregatedBase,
        name: 'TributaryAggregatedEndpoint',
        title: 'Tributary aggregated FHIR endpoint (read-only)',
        kind: 'aggregated',
        resourceTypes: [...aggregator.supported].sort(),
        interactions: ['read', 'vread', 'history-instance', 'history-type', 'search-type'],
        systemInteractions: ['history-system'],
        searchParams: (type) => searchParametersFor('R4', type),
        security: { oauthTokenUrl: `${config.publicUrl}/oauth2/token`, cors: config.corsOrigins.length > 0 },
        software: SOFTWARE,
        // Group/[id]/$export is listed on Group, so only where Group is aggregated (AGGREGATED_TYPES).
        operations: [OPERATIONS.graphql, OPERATIONS.export, OPERATIONS.everything, OPERATIONS.patientExport, OPERATIONS.groupExport],
        instantiates: ['http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data'],
      }) as Resource);
    const bulk = new BulkExport({ jobs: new ExportJobRepository(db.sql), directory: path.join(config.dataDir, 'exports'), ttlHours: config.exportTtlHours });
    scope.addHook('onClose', async () => bulk.idle());
    mountBulkExport(scope, {
      prefix: '/fhir/aggregated',
      baseUrl: aggregatedBase,
      bulk,
      serviceOf: async (request) => (await authorization.aggregated(await callerOf(request))).service,
    });
    mountFhir<AggregatedContext>(scope, {
      prefix: '/fhir/aggregated',
      routes: aggregatedRoutes(),
      metadata: async () => aggregatedCapability(),
      context: async (request: FastifyRequest) => {
        const caller = await callerOf(request);
        const { service } = await authorization.aggregated(caller);
        return {
          service,
          baseUrl: aggregatedBase,
          supported: aggregator.supported,
          bulk,
          graphql: (req: GraphqlRequest, instance?: Resource) => graphqlDoor.execute(req, graphqlContext(caller, { held: heldAudit() }), instance),
        };
      },
    });

    // The deprecating families over the native record (issue 14): the facade (STU3, read-only) and the
    // demographics $process-message (STU3, write-only), both for legacy-family tokens with X-Org-Public-Id.
    const legacyCallerOf = async (request: FastifyRequest): Promise<Caller> => ({
      ...(await authorization.authenticateLegacy(request.headers.authorization, request.headers['x-org-public-id'])),
      address: request.ip,
    });
    const facadeBase = () => `${config.publicUrl}/fhir/facade`;
    let facadeStatement: Resource | undefined;
    mountFhir<FacadeContext>(scope, {
      prefix: '/fhir/facade',
      routes: facadeRoutes(),
      metadata: async () =>
        (facadeStatement ??= capabilityStatement({
          fhirVersion: 'STU3',
          baseUrl: facadeBase(),
          name: 'TributaryFacadeEndpoint',
          title: 'Tributary facade FHIR endpoint (STU3, read-only, deprecating): the native record',
          kind: 'facade',
          resourceTypes: [...FACADE_TYPES].sort(),
          interactions: ['read', 'search-type'],
          systemInteractions: [],
          // The STU3 parameters the native store's R4 search answers under the same (or a mapped) name.
          searchParams: (type) => {
            const r4 = new Set(searchParametersFor('R4', type).map((p) => p.name));
            return searchParametersFor('STU3', type).filter((p) => r4.has(r4SearchParam(type, p.name)));
          },
          security: { oauthTokenUrl: `${config.publicUrl}/legacy/oauth2/token`, cors: config.corsOrigins.length > 0 },
          software: SOFTWARE,
        }) as Resource),
      fhirVersion: () => 'STU3',
      context: async (request: FastifyRequest) => {
        const { service, baseUrl } = authorization.facade(await legacyCallerOf(request));
        return { service, baseUrl };
      },
    });
    mountFhir<DemographicsContext>(scope, {
      prefix: '/fhir/demographics',
      routes: demographicsRoutes(),
      metadata: async () => {
        throw notFound('The demographics endpoint has one operation, POST Patient/$process-message, and no CapabilityStatement');
      },
      fhirVersion: () => 'STU3',
      context: async (request: FastifyRequest) => ({
        record: await authorization.native(await legacyCallerOf(request)),
        validator,
        facadeUrl: facadeBase(),
      }),
    });
  });
  void invitations.flush().catch((err) => app.log.warn({ err }, 'queued registration invitations could not be delivered'));

  return app;
}
