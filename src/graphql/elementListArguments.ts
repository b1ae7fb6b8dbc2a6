import fhirpath from 'fhirpath';
import r4Model from 'fhirpath/fhir-context/r4';
import stu3Model from 'fhirpath/fhir-context/stu3';
import {
  GraphQLBoolean,
  GraphQLError,
  GraphQLInt,
  GraphQLScalarType,
  GraphQLString,
  Kind,
  type GraphQLFieldConfigArgumentMap,
  type GraphQLInputType,
  type ValueNode,
} from 'graphql';
import { badRequest } from '../fhir/outcome';
import type { FhirVersion } from '../fhir/types';
import type { FieldModel, TypeModel } from './fhirModel';

/**
 * List navigation on repeating elements (R4 graphql.html, "List Navigation"): every field whose element
 * repeats takes `_offset`, `_count`, `fhirpath` (a FHIRPath boolean evaluated on each element: the elements
 * for which it is true are kept) and one argument per primitive field of the element type, keeping the
 * elements whose field has that value (`name(use: official)`, `telecom(system: phone)`, `extension(url: …)`).
 * The arguments are generated from the definitions, so every repeating element has them.
 *
 * Order: the value filters and `fhirpath` select, then `_offset` and `_count` page through what is left
 * (`name(use: official, _count: 1)` is the first official name). The lists are already in memory: these
 * arguments never fetch anything, so the cost limit (limits.ts) counts what is below such a field once,
 * whatever its `_count`; what a Reference below it fetches is counted at run time (costBudget.ts).
 */

/**
 * FHIR `code` as a filter argument: a string, which may also be written bare as the specification's
 * examples do (`name(use: official)`), since a code such as `official` is a valid GraphQL name.
 */
export const CodeArgument = new GraphQLScalarType({
  name: 'code',
  description: 'A FHIR code; in a filter argument it may be written bare (use: official) or quoted (use: "official")',
  serialize: (v) => v,
  parseValue: (v) => {
    if (typeof v === 'string') return v;
    throw new GraphQLError(`A code must be a string, not ${JSON.stringify(v)}`);
  },
  parseLiteral: (ast: ValueNode) => {
    if (ast.kind === Kind.STRING || ast.kind === Kind.ENUM) return ast.value;
    throw new GraphQLError('A code must be a string or a bare name', { nodes: ast });
  },
});

/** The argument type that filters on a primitive of FHIR type `type`; undefined: not filterable (decimal, base64Binary, xhtml). */
function filterType(type: string): GraphQLInputType | undefined {
  switch (type) {
    case 'boolean':
      return GraphQLBoolean;
    case 'integer':
    case 'positiveInt':
    case 'unsignedInt':
      return GraphQLInt;
    case 'code':
      return CodeArgument;
    case 'decimal':
    case 'base64Binary':
    case 'xhtml':
      return undefined;
    default:
      return GraphQLString;
  }
}

/** Names the list arguments take; an element type has no field of these names. */
const PAGING = new Set(['_count', '_offset', 'fhirpath']);

export interface ElementListArgs {
  _count?: number | null;
  _offset?: number | null;
  fhirpath?: string | null;
  [field: string]: unknown;
}

/**
 * The arguments of a repeating field whose elements are of `element` (undefined: primitives or resources,
 * which have no fields to filter on). Without descriptions: the SDL then prints them on the field's own
 * line, and the ~5,000 repeating fields stay one line each in the committed contract (the module comment
 * above and the README say what they do).
 */
export function elementListArguments(element: TypeModel | undefined): GraphQLFieldConfigArgumentMap {
  const args: GraphQLFieldConfigArgumentMap = {
    _count: { type: GraphQLInt },
    _offset: { type: GraphQLInt },
    fhirpath: { type: GraphQLString },
  };
  for (const f of element?.fields ?? []) {
    // Not the typed variants of a choice (Extension's valueString, valueCode… 19 of them): on every `extension`
    // of every type they tripled its arguments and made the introspection result a third larger, for filters
    // `fhirpath` already gives (`extension(fhirpath: "value = 'x'")`).
    const choice = !f.path.endsWith(`.${f.name}`);
    const type = f.primitive && !choice && !PAGING.has(f.name) ? filterType(f.type) : undefined;
    if (type) args[f.name] = { type };
  }
  return args;
}

/**
 * The elements of `list` the arguments select, in order. `field` is the repeating element, whose path
 * gives FHIRPath the elements' type in `version`'s model (so `value.ofType(Quantity)` and choice names
 * work). An absent list stays absent (null in the answer).
 */
export function filterElements(list: unknown, args: ElementListArgs, field: FieldModel, version: FhirVersion = 'R4'): unknown {
  if (!Array.isArray(list)) return list;
  const count = nonNegative(args._count, '_count', field);
  const offset = nonNegative(args._offset, '_offset', field) ?? 0;
  let out: unknown[] = list;
  const filters = Object.entries(args).filter(([name, value]) => !PAGING.has(name) && value !== undefined && value !== null);
  if (filters.length) out = out.filter((element) => filters.every(([name, value]) => hasValue((element as Record<string, unknown> | null)?.[name], value)));
  if (args.fhirpath) {
    const test = predicate(args.fhirpath, field, version);
    out = out.filter(test);
  }
  return out.slice(offset, count === undefined ? undefined : offset + count);
}

function nonNegative(value: number | null | undefined, name: string, field: FieldModel): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (value < 0) throw badRequest(`${name} on ${field.name} must be 0 or more, not ${value}`, field.path);
  return value;
}

function hasValue(actual: unknown, wanted: unknown): boolean {
  if (Array.isArray(actual)) return actual.some((a) => hasValue(a, wanted));
  // A FhirDecimal-held integer compares by its number.
  return actual === wanted || (typeof wanted === 'number' && actual !== null && typeof actual === 'object' && Number(actual) === wanted);
}

type Compiled = (element: unknown) => unknown[];

/** Compiled expressions by type context and text: a list of many elements, or many lists, compile once. */
const compiledCache = new Map<string, Compiled>();
const CACHE_MAX = 500;

const MODELS = { R4: r4Model, STU3: stu3Model } as const;

function compile(expression: string, field: FieldModel, version: FhirVersion): Compiled {
  const key = `${version}\u0000${field.path}\u0000${expression}`;
  let fn = compiledCache.get(key);
  if (fn) return fn;
  const model = MODELS[version];
  // A path FHIRPath's model does not know (a type only this server names) is evaluated untyped.
  const known = field.path in model.path2Type || field.path in model.pathsDefinedElsewhere;
  try {
    fn = fhirpath.compile(known ? { base: field.path, expression } : expression, model, { traceFn: () => undefined }) as Compiled;
  } catch (err) {
    throw invalid(expression, field, err);
  }
  if (compiledCache.size >= CACHE_MAX) compiledCache.clear();
  compiledCache.set(key, fn);
  return fn;
}

function predicate(expression: string, field: FieldModel, version: FhirVersion): (element: unknown) => boolean {
  const fn = compile(expression, field, version);
  return (element) => {
    let result: unknown[];
    try {
      result = fn(element);
    } catch (err) {
      throw invalid(expression, field, err);
    }
    // FHIRPath's boolean evaluation of a collection (fhirpath spec §4.5): empty is false, one boolean is itself.
    if (result.length === 0) return false;
    if (result.length === 1 && typeof result[0] === 'boolean') return result[0];
    throw badRequest(`fhirpath: "${expression}" on ${field.name} must give one boolean for each element; it gave ${JSON.stringify(result).slice(0, 200)}`, field.path);
  };
}

function invalid(expression: string, field: FieldModel, err: unknown): Error {
  return badRequest(`fhirpath: "${expression}" on ${field.name} is not a FHIRPath expression this server can evaluate: ${(err as Error).message}`, field.path);
}
