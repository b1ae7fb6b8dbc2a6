import Ajv, { type ErrorObject, type ValidateFunction } from 'ajv';
import draft06 from 'ajv/dist/refs/json-schema-draft-06.json';
import { isResourceType, jsonSchema } from './definitions';
import { invariantViolations } from './invariants';
import { isFhirDecimal } from './losslessJson';
import { narrativeViolations } from './narrative';
import { NUMERIC_DIGITS_AFTER_POINT, NUMERIC_DIGITS_BEFORE_POINT, withinNumeric } from './withinNumeric';
import { adaptDefinitions, BASE64, DECIMAL, REQUIRED } from './schemaRules';
import { badRequest, invalidStructure, type OperationOutcomeIssue } from './outcome';
import { strictDefinitions } from './strictSchema';
import type { FhirVersion, Resource } from './types';

/**
 * Validation of FHIR JSON for the endpoint's FHIR version, R4 or STU3 alike: HL7's JSON schema for that
 * version, with the rules it leaves out added from FHIR's own (schemaRules.ts: required elements from the
 * version's StructureDefinitions, `_x` twins, no empty elements, formats), then the StructureDefinitions'
 * FHIRPath invariants (invariants.ts) and the narrative rules no engine runs (narrative.ts). The schema is
 * compiled once per version, on the version's first write (or its warm-up), then each resource is checked
 * against its own type's definition, which keeps error locations precise (`Patient.gender`, not "matches no
 * branch of a 150-way oneOf").
 *
 * Nested resources (`contained`, `Bundle.entry.resource`, `Parameters.parameter.resource`) are where HL7's
 * schema says `ResourceList`: a oneOf over every resource type. With every error collected, ajv tries all
 * ~150 branches for each nested resource (2 ms for a Synthea ExplanationOfBenefit, most of a bulk load's
 * time) and reports the failures of all of them. Instead `ResourceList` becomes one keyword that dispatches
 * on `resourceType` to that type's own validator, so a nested resource costs what a top-level one does and
 * its errors carry their own paths.
 */
const SCHEMA_ID = 'fhir.schema.json';
const MAX_ISSUES = 20;
const NESTED = 'fhirResource';

interface Compiled {
  ajv: Ajv;
  byType: Map<string, ValidateFunction>;
}

const compiled = new Map<FhirVersion, Compiled>();

type Definitions = Record<string, Record<string, unknown>>;

/** HL7's definitions made strict (no unknown elements) and given our keywords: a third of a warm-up's CPU. */
function fhirDefinitions(version: FhirVersion, strict = strictDefinitions(jsonSchema(version).definitions) as Definitions): Definitions {
  return adaptDefinitions(version, strict);
}

function compile(version: FhirVersion, definitions?: () => Definitions): Compiled {
  let entry = compiled.get(version);
  if (entry) return entry;
  const source = jsonSchema(version);
  // Fixes that make HL7's draft-06 schema compile in ajv 8: the draft-06 meta-schema, `$id` instead of `id`,
  // `Resource` (referred to, never defined) and in R4 `integer64`. The top-level discriminator/oneOf is
  // dropped: we always validate against one type's definition.
  const { id: _id, discriminator: _d, oneOf: _o, ...rest } = source;
  const schema = {
    ...rest,
    $id: SCHEMA_ID,
    definitions: {
      ...(definitions ?? (() => fhirDefinitions(version)))(),
      ResourceList: { [NESTED]: true },
      Resource: { [NESTED]: true },
      integer64: source.definitions.integer64 ?? { type: 'string', pattern: '^[0]|[-+]?[1-9][0-9]*$' },
    },
  };
  // validateSchema off: checking HL7's fixed schema against the draft-06 meta-schema on every start cost more
  // CPU than adding it (a broken schema still fails to compile, in the tests).
  const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false, validateSchema: false });
  ajv.addMetaSchema(draft06);
  ajv.addKeyword({ keyword: NESTED, errors: true, validate: nestedValidator(version) });
  ajv.addKeyword({ keyword: DECIMAL, errors: true, validate: decimalValidator });
  ajv.addKeyword({ keyword: BASE64, errors: true, validate: base64Validator });
  ajv.addKeyword({ keyword: REQUIRED, errors: true, validate: requiredValidator });
  ajv.addSchema(schema);
  entry = { ajv, byType: new Map() };
  compiled.set(version, entry);
  return entry;
}

type NestedValidator = ((schema: unknown, data: unknown, parent: unknown, cxt?: { instancePath: string }) => boolean) & { errors?: Partial<ErrorObject>[] };

function nestedValidator(version: FhirVersion): NestedValidator {
  const check: NestedValidator = (_schema, data, _parent, cxt) => {
    const at = cxt?.instancePath ?? '';
    const fail = (instancePath: string, message: string, params: Record<string, unknown> = {}) => {
      check.errors = [{ keyword: params.missingProperty ? 'required' : NESTED, instancePath, params, message }];
      return false;
    };
    if (data === null || typeof data !== 'object' || Array.isArray(data)) return fail(at, 'must be a resource (a JSON object with a resourceType)');
    const type = (data as { resourceType?: unknown }).resourceType;
    if (typeof type !== 'string') return fail(at, "missing required element 'resourceType'", { missingProperty: 'resourceType' });
    if (!isResourceType(version, type)) return fail(`${at}/resourceType`, `'${type}' is not a FHIR ${version} resource type`);
    const validate = validatorFor(version, type);
    if (validate(data)) return true;
    check.errors = (validate.errors ?? []).map((e) => ({ ...e, instancePath: `${at}${e.instancePath}` }));
    return false;
  };
  return check;
}

const decimalValidator: NestedValidator = (_schema, data, _parent, cxt) => {
  if (typeof data === 'number' && Number.isFinite(data)) return true;
  if (isFhirDecimal(data) && withinNumeric(data.toString())) return true;
  decimalValidator.errors = [
    isFhirDecimal(data)
      ? {
          keyword: 'maximum',
          instancePath: cxt?.instancePath ?? '',
          params: {},
          message: `is beyond the decimals this server stores (${NUMERIC_DIGITS_BEFORE_POINT} digits before the point, ${NUMERIC_DIGITS_AFTER_POINT} after)`,
        }
      : { keyword: 'type', instancePath: cxt?.instancePath ?? '', params: { type: 'number' }, message: 'must be a decimal number' },
  ];
  return false;
};

/** base64 (RFC 4648 §4), whitespace allowed between groups as in XML Schema's base64Binary. */
const BASE64_TEXT = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

const base64Validator: NestedValidator = (_schema, data, _parent, cxt) => {
  // Whitespace is rare (and never in a valid value without it): the copy without it is made only when the value fails.
  if (typeof data !== 'string' || BASE64_TEXT.test(data) || BASE64_TEXT.test(data.replace(/[ \t\r\n]/g, ''))) return true;
  base64Validator.errors = [{ keyword: 'format', instancePath: cxt?.instancePath ?? '', params: { format: 'base64Binary' }, message: 'is not valid base64 (base64Binary)' }];
  return false;
};

/** Required elements (min cardinality ≥ 1): each entry lists the JSON keys that satisfy one element. */
const requiredValidator = ((alternatives: string[][], data: unknown, _parent: unknown, cxt?: { instancePath: string }) => {
  if (data === null || typeof data !== 'object' || Array.isArray(data)) return true;
  // Run on most objects of every resource: the list of what is missing is built only when something is.
  if (hasEach(data as Record<string, unknown>, alternatives)) return true;
  const missing = alternatives.filter((keys) => !hasOne(data as Record<string, unknown>, keys));
  requiredValidator.errors = missing.map((keys) => ({
    keyword: 'required',
    instancePath: cxt?.instancePath ?? '',
    params: { missingProperty: keys[0].endsWith('[x]') ? keys[0] : choiceName(keys) },
    message: 'min cardinality 1',
  }));
  return false;
}) as NestedValidator;

/** Whether `data` has a value for at least one of `keys`. */
function hasOne(data: Record<string, unknown>, keys: string[]): boolean {
  for (const k of keys) if (data[k] !== undefined) return true;
  return false;
}

/** Whether `data` has a value for each element of `alternatives` (each element: the keys that satisfy it). */
function hasEach(data: Record<string, unknown>, alternatives: string[][]): boolean {
  for (const keys of alternatives) if (!hasOne(data, keys)) return false;
  return true;
}

/** `['valueQuantity', '_valueQuantity', 'valueString', …]` → `value[x]`; `['status', '_status']` → `status`. */
function choiceName(keys: string[]): string {
  const plain = keys.filter((k) => !k.startsWith('_'));
  if (plain.length === 1) return plain[0];
  let prefix = plain[0];
  for (const k of plain) while (!k.startsWith(prefix)) prefix = prefix.slice(0, -1);
  return `${prefix}[x]`;
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

/**
 * The definitions a warm-up compiles, each in its own slice, leaves first: ajv compiles a definition once
 * and reuses it in those that refer to it, so no slice holds the event loop long (Patient alone, with
 * everything it refers to, is most of a second of CPU).
 */
const WARM_TYPES = [
  'Element',
  'Coding',
  'CodeableConcept',
  'Period',
  'Identifier',
  'Reference',
  'HumanName',
  'ContactPoint',
  'Address',
  'Attachment',
  'Meta',
  'Narrative',
  'Extension',
  'Patient',
];

/**
 * Compiles the schema and the commonest definitions now rather than on the first write (server start),
 * yielding to the event loop between definitions so a request that arrives meanwhile is served promptly.
 * A write that arrives before the warm-up is done compiles what it needs itself.
 */
export async function warmValidation(version: FhirVersion, pause: () => Promise<void> = () => new Promise((resolve) => setImmediate(resolve))): Promise<void> {
  if (!compiled.has(version)) {
    await pause();
    const source = jsonSchema(version);
    await pause();
    const strict = strictDefinitions(source.definitions) as Definitions;
    await pause();
    const definitions = fhirDefinitions(version, strict);
    await pause();
    compile(version, () => definitions);
  }
  for (const type of WARM_TYPES) {
    await pause();
    validatorFor(version, type);
  }
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
    case 'minItems':
      return 'must not be an empty array (json.html: an element has a value or children)';
    case 'minProperties':
      return 'must not be an empty object (ele-1: an element has a value or children)';
    case 'type':
      return params.type === 'object' ? 'must be an object (not null, an array or a primitive)' : (error.message ?? 'wrong type');
    default:
      return error.message ?? error.keyword;
  }
}

function location(type: string, path: string, error: ErrorObject): string {
  const params = error.params as { additionalProperty?: string; missingProperty?: string };
  const named = error.keyword === 'additionalProperties' ? params.additionalProperty : error.keyword === 'required' ? params.missingProperty : undefined;
  const extra = named ? `/${named}` : '';
  return toExpression(type, `${path}${extra}`);
}

interface Violation {
  path: string;
  error: ErrorObject;
}

function violations(version: FhirVersion, resource: Record<string, unknown>): Violation[] {
  const validate = validatorFor(version, resource.resourceType as string);
  if (validate(resource)) return [];
  return (validate.errors ?? []).map((error) => ({ path: error.instancePath, error }));
}

/** The StructureDefinitions' FHIRPath invariants (invariants.ts) and the narrative rules (narrative.ts), once the structure is right. */
function assertInvariants(version: FhirVersion, resource: Record<string, unknown> & { resourceType: string }): void {
  const broken = [...invariantViolations(version, resource), ...narrativeViolations(version, resource)];
  if (!broken.length) return;
  throw invalidStructure(
    broken
      .slice(0, MAX_ISSUES)
      .map((v) => ({ severity: 'error', code: 'invariant', diagnostics: `${v.path}: ${v.key}: ${v.human}`, expression: [v.path] }) as OperationOutcomeIssue),
  );
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
  const found = violations(version, body as Record<string, unknown>);
  if (!found.length) {
    assertInvariants(version, body as Record<string, unknown> & { resourceType: string });
    return;
  }
  const issues: OperationOutcomeIssue[] = [];
  const seen = new Set<string>();
  for (const { path, error } of found) {
    const where = location(type, path, error);
    const diagnostics = `${where}: ${describe(error)}`;
    if (seen.has(diagnostics)) continue;
    seen.add(diagnostics);
    issues.push({
      severity: 'error',
      code: error.keyword === 'required' ? 'required' : error.keyword === 'additionalProperties' ? 'structure' : 'value',
      diagnostics,
      expression: [where],
    });
    if (issues.length === MAX_ISSUES) break;
  }
  if (!issues.length) issues.push({ severity: 'error', code: 'structure', diagnostics: `${type} does not conform to the FHIR ${version} schema`, expression: [type] });
  throw invalidStructure(issues);
}
