import type { Resource } from './types';

/**
 * OperationOutcome inside, converted once at each edge: deep code throws `OperationOutcomeError`, the REST
 * door turns it into a status and body, the GraphQL door into an error whose `extensions` carry the outcome.
 * Issue codes are FHIR's IssueType (http://hl7.org/fhir/R4/valueset-issue-type.html).
 */
export type IssueSeverity = 'fatal' | 'error' | 'warning' | 'information';

export interface OperationOutcomeIssue {
  severity: IssueSeverity;
  code: string;
  diagnostics?: string;
  details?: { text?: string };
  /** FHIRPath-like locations of the problem, e.g. `Patient.gender` or `Bundle.entry[2]`. */
  expression?: string[];
}

export interface OperationOutcome extends Resource {
  resourceType: 'OperationOutcome';
  issue: OperationOutcomeIssue[];
}

export function operationOutcome(issues: OperationOutcomeIssue[]): OperationOutcome {
  return { resourceType: 'OperationOutcome', issue: issues };
}

export class OperationOutcomeError extends Error {
  constructor(
    readonly status: number,
    readonly outcome: OperationOutcome,
    /** Extra response headers, e.g. `WWW-Authenticate` on a 401. */
    readonly headers: Record<string, string> = {},
  ) {
    super(outcome.issue.map((i) => i.diagnostics ?? i.details?.text ?? i.code).join('; '));
    this.name = 'OperationOutcomeError';
  }
}

function fail(status: number, code: string, diagnostics: string, expression?: string | string[]): OperationOutcomeError {
  const issue: OperationOutcomeIssue = { severity: 'error', code, diagnostics };
  if (expression !== undefined) issue.expression = Array.isArray(expression) ? expression : [expression];
  return new OperationOutcomeError(status, operationOutcome([issue]));
}

export const badRequest = (msg: string, expression?: string | string[]) => fail(400, 'invalid', msg, expression);
export const invalidStructure = (issues: OperationOutcomeIssue[]) => new OperationOutcomeError(400, operationOutcome(issues));
export const notSupported = (msg: string) => fail(400, 'not-supported', msg);
export const unauthorized = (msg = 'Authentication required') => {
  const err = fail(401, 'login', msg);
  return new OperationOutcomeError(err.status, err.outcome, { 'WWW-Authenticate': 'Bearer realm="tributary"' });
};
export const forbidden = (msg = 'Forbidden') => fail(403, 'forbidden', msg);
export const notFound = (msg = 'Not found') => fail(404, 'not-found', msg);
export const methodNotAllowed = (msg: string) => fail(405, 'not-supported', msg);
export const conflict = (msg: string) => fail(409, 'conflict', msg);
export const gone = (msg: string) => fail(410, 'deleted', msg);
export const preconditionFailed = (msg: string) => fail(412, 'conflict', msg);
export const payloadTooLarge = (msg: string) => fail(413, 'too-costly', msg);
export const unsupportedMediaType = (msg: string) => fail(415, 'not-supported', msg);
export const unprocessable = (msg: string, expression?: string | string[]) => fail(422, 'processing', msg, expression);
export const tooManyMatches = (msg: string) => fail(412, 'multiple-matches', msg);
export const notImplemented = (msg: string) => fail(501, 'not-supported', msg);

export function informational(msg: string): OperationOutcome {
  return operationOutcome([{ severity: 'information', code: 'informational', diagnostics: msg }]);
}

export function isOperationOutcomeError(err: unknown): err is OperationOutcomeError {
  return err instanceof OperationOutcomeError;
}

/** 503 with Retry-After: the server is healthy but cannot take this now (e.g. the aggregation is behind). */
export const throttled = (msg: string, retryAfterSeconds: number) => {
  const err = fail(503, 'throttled', msg);
  return new OperationOutcomeError(err.status, err.outcome, { 'Retry-After': String(retryAfterSeconds) });
};
