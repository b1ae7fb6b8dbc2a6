import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { parseFhirJson } from '../fhir/losslessJson';
import { OperationOutcomeError } from '../fhir/outcome';
import type { FhirVersion, Resource } from '../fhir/types';
import { assertJsonShape, assertUtf8Charset, decodeUtf8, DEFAULT_MAX_DEPTH } from './bodyLimits';
import { assertQuerySyntax, assertResourceMediaType } from './requestSyntax';
import { type FhirRequest, type FhirResponse, type HttpMethod, ok } from './fhirHttp';
import { isXmlMediaType, JSON_TYPES, negotiate, requestBody, responsePayload, XML_TYPES, XmlBody } from './fhirFormat';
import type { RouteTable } from './routeTable';

/**
 * The only place FHIR REST meets Fastify: turns an HTTP request into a `FhirRequest`, runs the route table,
 * and writes the `FhirResponse` (or the OperationOutcome of an error) back with FHIR's media types.
 */
export interface FhirMount<C> {
  /** Fastify path prefix of the endpoint root, e.g. `/fhir/customer/:endpointId`. */
  prefix: string;
  routes: Pick<RouteTable<C>, 'handle'>;
  /**
   * The CapabilityStatement (`GET [base]/metadata`), answered before `context` and so without a token:
   * FHIR clients read it before they authenticate (http.html#capabilities).
   */
  metadata(request: FastifyRequest): Promise<Resource>;
  /** Authenticates and resolves the endpoint; throws an OperationOutcomeError to refuse. */
  context(request: FastifyRequest): Promise<C>;
  /** The FHIR version of the endpoint, for reading and writing XML; R4 when not given. */
  fhirVersion?(context: C): FhirVersion;
}

function splitQuery(url: string): { query: [string, string][]; format?: string; pretty: boolean } {
  const i = url.indexOf('?');
  const all = i < 0 ? [] : [...new URLSearchParams(url.slice(i + 1)).entries()];
  const format = all.find(([k]) => k === '_format')?.[1];
  const pretty = all.some(([k, v]) => k === '_pretty' && v === 'true');
  return { query: all.filter(([k]) => k !== '_format' && k !== '_pretty'), format, pretty };
}

/** The format a request asked for, or JSON when what it asked for cannot be had (the answer is then an error anyway). */
function askedFor(request: FastifyRequest): string {
  try {
    const preferred = isXmlMediaType(request.headers['content-type']) ? 'application/fhir+xml' : 'application/fhir+json';
    return negotiate(splitQuery(request.raw.url ?? '').format, request.headers.accept, preferred);
  } catch {
    return 'application/fhir+json';
  }
}

/** An OperationOutcome in the format negotiated for the request (XML when XML was asked for). */
export function sendOutcome(reply: FastifyReply, err: OperationOutcomeError, mediaType = askedFor(reply.request)): FastifyReply {
  const { type, payload } = responsePayload(err.outcome, mediaType, 'R4', false);
  return reply.status(err.status).headers(err.headers).type(`${type}; charset=utf-8`).send(payload);
}

/** Installs JSON and XML body parsing for FHIR media types (and forms for `_search`) in the caller's plugin scope. */
export function installFhirParsers(app: FastifyInstance, bodyLimit: number, maxDepth = DEFAULT_MAX_DEPTH): void {
  app.removeContentTypeParser(['application/json']);
  // Bodies arrive as bytes: charset, strict UTF-8 and nesting are checked before parsing (bodyLimits.ts).
  app.addContentTypeParser(JSON_TYPES, { parseAs: 'buffer', bodyLimit }, (req, body, done) => {
    try {
      assertUtf8Charset(req.headers['content-type']);
      const text = decodeUtf8(body as Buffer);
      if (text.trim() === '') return done(null, undefined);
      // One pass checks the nesting and reads the numbers, so the parser need not read them again.
      done(null, parseFhirJson(text, { numbersExact: assertJsonShape(text, maxDepth, body as Buffer) }));
    } catch (e) {
      done(e as Error);
    }
  });
  // XML is read once the endpoint's FHIR version is known (mountFhir).
  app.addContentTypeParser(XML_TYPES, { parseAs: 'buffer', bodyLimit }, (req, body, done) => {
    try {
      assertUtf8Charset(req.headers['content-type']);
      done(null, new XmlBody(decodeUtf8(body as Buffer), maxDepth));
    } catch (e) {
      done(e as Error);
    }
  });
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'buffer', bodyLimit }, (_req, body, done) => {
    try {
      done(null, decodeUtf8(body as Buffer));
    } catch (e) {
      done(e as Error);
    }
  });
}

function fhirRequestOf(request: FastifyRequest, path: string, query: [string, string][], version: FhirVersion): FhirRequest {
  return {
    method: request.method as HttpMethod,
    path,
    query,
    headers: request.headers as Record<string, string | undefined>,
    body: requestBody(request.body, version),
    contentType: request.headers['content-type']?.split(';')[0].trim().toLowerCase(),
  };
}

export function mountFhir<C>(app: FastifyInstance, mount: FhirMount<C>): void {
  const handler = async (request: FastifyRequest, reply: FastifyReply) => {
    const { query, format, pretty } = splitQuery(request.raw.url ?? '');
    let mediaType = 'application/fhir+json';
    try {
      const xmlIn = request.body instanceof XmlBody;
      mediaType = negotiate(format, request.headers.accept, xmlIn ? 'application/fhir+xml' : 'application/fhir+json');
      const params = request.params as Record<string, string>;
      const path = (params['*'] ?? '').replace(/\/+$/, '');
      let response: FhirResponse;
      let version: FhirVersion = 'R4';
      if (path === 'metadata' && (request.method === 'GET' || request.method === 'HEAD')) {
        const statement = await mount.metadata(request);
        version = String(statement.fhirVersion).startsWith('3.') ? 'STU3' : 'R4';
        response = ok(statement);
      } else {
        const ctx = await mount.context(request);
        assertQuerySyntax(query);
        assertResourceMediaType(request.method, path, request.headers['content-type']);
        version = mount.fhirVersion?.(ctx) ?? 'R4';
        response = await mount.routes.handle(fhirRequestOf(request, path, query, version), ctx);
      }
      reply.status(response.status).headers(response.headers);
      if (response.status === 304) return reply.send();
      // A stored resource's own text, when the read has it and JSON is asked for as it is (fhirHttp.ts `okStored`).
      if (response.json !== undefined && !pretty && !isXmlMediaType(mediaType)) return reply.type(`${mediaType}; charset=utf-8`).send(response.json);
      if (response.body === undefined) return reply.send();
      const { type, payload } = responsePayload(response.body, mediaType, version, pretty);
      return reply.type(`${type}; charset=utf-8`).send(payload);
    } catch (err) {
      if (err instanceof OperationOutcomeError) return sendOutcome(reply, err, mediaType);
      throw err;
    }
  };
  const methods: HttpMethod[] = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'];
  app.route({ method: methods, url: `${mount.prefix}`, handler });
  app.route({ method: methods, url: `${mount.prefix}/*`, handler });
}
