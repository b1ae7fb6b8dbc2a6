import Ajv, { type ErrorObject, type ValidateFunction } from 'ajv';
import draft06 from 'ajv/dist/refs/json-schema-draft-06.json';
import { isResourceType, jsonSchema } from './definitions';
import { badRequest, invalidStructure, type OperationOutcomeIssue } from './outcome';
import type { FhirVersion, Resource } from './types';

/**
 * Syntax validation of FHIR JSON against HL7's JSON schema for the endpoint's FHIR version. The schema is
 * compiled once per version (about 1.5 s and well over 100 MB for R4), then each resource is checked against
 * its own type's definition, which keeps error locations precise (`Patient.gender`, not "matches no branch
 * of a 150-way oneOf").
 */
const SCHEMA_ID = 'fhir.schema.json';
const MAX_ISSUES = 20;

interface Compiled {
  ajv: Ajv;
  byType: Map<string, ValidateFunction>;
}

const compiled = new Map<FhirVersion, Compiled>();

function compile(version: FhirVersion): Compiled {
  let entry = compiled.get(version);
  if (entry) return entry;
  const source = jsonSchema(version);
  // Four fixes make HL7's draft-06 schema compile in ajv 8: the draft-06 meta-schema, `$id` instead of `id`,
  // and the definitions it refers to without defining (`Resource`, and in R4 `integer64`).
  // The top-level discriminator/oneOf is dropped: we always validate against one type's definition.
  const { id: _id, discriminator: _d, oneOf: _o, ...rest } = source;
  const schema = {
    ...rest,
    $id: SCHEMA_ID,
    definitions: {
      ...source.definitions,
      Resource: source.definitions.Resource ?? { $ref: '#/definitions/ResourceList' },
      integer64: source.definitions.integer64 ?? { type: 'string', pattern: '^[0]|[-+]?[1-9][0-9]*$' },
    },
  };
  const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false });
  ajv.addMetaSchema(draft06);
  ajv.addSchema(schema);
  entry = { ajv, byType: new Map() };
  compiled.set(version, entry);
  return entry;
}

function validatorFor(version: FhirVersion, type: string): ValidateFunction {
  const entry = compile(version);
  let fn = entry.byType.get(type);
  if (!fn) {
    fn = entry.ajv.getSchema(`${SCHEMA_ID}#/definitions/${type}`);
    if (!fn) throw new Error(`No schema definition for ${type}`);
    entry.byType.set(type, fn);
  }
  return fn;
}

/** Compiles the schema now rather than on the first write (server start). */
export function warmValidation(version: FhirVersion): void {
  compile(version);
  validatorFor(version, 'Patient');
}

/** `/name/0/given` → `Patient.name[0].given`: the FHIRPath-style location FHIR clients expect. */
export function toExpression(type: string, instancePath: string): string {
  let expr = type;
  for (const part of instancePath.split('/').slice(1)) {
    const key = part.replace(/~1/g, '/').replace(/~0/g, '~');
    expr += /^\d+$/.test(key) ? `[${key}]` : `.${key}`;
  }
  return expr;
}

function describe(error: ErrorObject): string {
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case 'additionalProperties':
      return `unknown element '${String(params.additionalProperty)}'`;
    case 'required':
      return `missing required element '${String(params.missingProperty)}'`;
    case 'enum':
      return `must be one of: ${(params.allowedValues as unknown[]).join(', ')}`;
    case 'const':
      return `must be '${String(params.allowedValue)}'`;
    default:
      return error.message ?? error.keyword;
  }
}

function location(type: string, path: string, error: ErrorObject): string {
  const extra = error.keyword === 'additionalProperties' ? `/${String((error.params as { additionalProperty: string }).additionalProperty)}` : '';
  return toExpression(type, `${path}${extra}`);
}

interface Violation {
  path: string;
  error: ErrorObject;
}

function valueAt(root: unknown, pointer: string): unknown {
  let node = root;
  for (const part of pointer.split('/').slice(1)) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Record<string, unknown>)[part.replace(/~1/g, '/').replace(/~0/g, '~')];
  }
  return node;
}

/** The pointer of the innermost resource (other than the root) that contains `pointer`, if any. */
function nestedResourceRoot(root: unknown, pointer: string): string | undefined {
  const parts = pointer.split('/');
  for (let end = parts.length; end > 1; end--) {
    const prefix = parts.slice(0, end).join('/');
    const node = valueAt(root, prefix);
    if (node && typeof node === 'object' && !Array.isArray(node) && typeof (node as { resourceType?: unknown }).resourceType === 'string') {
      return prefix;
    }
  }
  return undefined;
}

/**
 * Contained and bundled resources are checked by the schema against `ResourceList`, a oneOf of every type,
 * whose failure reports every branch. Re-check each failing nested resource against its own type instead,
 * which reports what the sender meant.
 */
function violations(version: FhirVersion, resource: Record<string, unknown>, base: string): Violation[] {
  const type = resource.resourceType as string;
  if (!isResourceType(version, type)) {
    return [{ path: `${base}/resourceType`, error: { keyword: 'enum', instancePath: '', schemaPath: '', params: {}, message: `'${type}' is not a FHIR ${version} resource type` } }];
  }
  const validate = validatorFor(version, type);
  if (validate(resource)) return [];
  const own: Violation[] = [];
  const nested = new Set<string>();
  for (const error of validate.errors ?? []) {
    const inner = nestedResourceRoot(resource, error.instancePath);
    if (inner) nested.add(inner);
    else if (error.keyword !== 'oneOf') own.push({ path: `${base}${error.instancePath}`, error });
  }
  for (const pointer of nested) {
    own.push(...violations(version, valueAt(resource, pointer) as Record<string, unknown>, `${base}${pointer}`));
  }
  return own;
}

/**
 * Throws a 400 OperationOutcome listing each violation and its location; returns normally when `body` is a
 * valid resource of a known type (of `expectedType` when given).
 */
export function assertValidResource(version: FhirVersion, body: unknown, expectedType?: string): asserts body is Resource {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw badRequest('The body must be a JSON object holding a FHIR resource');
  const type = (body as { resourceType?: unknown }).resourceType;
  if (typeof type !== 'string') throw badRequest('The resource has no resourceType', 'resourceType');
  if (!isResourceType(version, type)) throw badRequest(`'${type}' is not a FHIR ${version} resource type`, 'resourceType');
  if (expectedType && type !== expectedType) {
    throw badRequest(`The resource is a ${type}, but the URL names ${expectedType}`, 'resourceType');
  }
  const found = violations(version, body as Record<string, unknown>, '');
  if (!found.length) return;
  const issues: OperationOutcomeIssue[] = [];
  const seen = new Set<string>();
  for (const { path, error } of found) {
    const where = location(type, path, error);
    const diagnostics = `${where}: ${describe(error)}`;
    if (seen.has(diagnostics)) continue;
    seen.add(diagnostics);
    issues.push({ severity: 'error', code: error.keyword === 'required' ? 'required' : error.keyword === 'additionalProperties' ? 'structure' : 'value', diagnostics, expression: [where] });
    if (issues.length === MAX_ISSUES) break;
  }
  if (!issues.length) issues.push({ severity: 'error', code: 'structure', diagnostics: `${type} does not conform to the FHIR ${version} schema`, expression: [type] });
  throw invalidStructure(issues);
}
