import {
  getNamedType,
  getOperationAST,
  getVariableValues,
  GraphQLError,
  GraphQLInt,
  isInterfaceType,
  isObjectType,
  Kind,
  valueFromAST,
  type DocumentNode,
  type FieldNode,
  type FragmentDefinitionNode,
  type GraphQLField,
  type GraphQLNamedType,
  type GraphQLSchema,
  type SelectionSetNode,
} from 'graphql';
import { operationOutcome } from '../fhir/outcome';
import { LIST_MAX } from './listSearch';

/**
 * Per-operation limits: selection depth, number of aliases, and a cost where every field costs 1 and
 * fields that page through search results (those with a `_count` argument: …List, …Connection, reverse
 * references) multiply what is below them by the page they will fetch. Repeating elements also take
 * `_count`, but page what the resource already holds: what is below them counts once, as without it.
 *
 * Measured at execution, not validation: a validation rule sees `_count: $n` but not n. The operation
 * that will run is measured with the request's variables, its defaults applied, so `_count: $n` costs
 * what `_count: 1000` written in the query costs. Counting is conservative: every fragment spread and
 * every alias of a list counts in full, and `@skip`/`@include` are ignored (the field may run).
 */
export interface QueryLimits {
  maxDepth: number;
  maxAliases: number;
  maxCost: number;
  /** Lexical tokens a document may have: parsing stops there, so a huge document costs no more than this (default 10,000). */
  maxTokens?: number;
}

export const DEFAULT_MAX_TOKENS = 10_000;

/**
 * The page a list field costs without `_count`: search's default page size. A List without `_count`
 * may return up to LIST_MAX, but costing every unbounded list at the maximum would refuse the ordinary
 * patient-record query; a `_count` over the maximum costs the maximum, which is all that runs.
 */
const DEFAULT_PAGE = 20;

interface Measure {
  depth: number;
  aliases: number;
  cost: number;
}

interface Walk {
  schema: GraphQLSchema;
  fragments: Map<string, FragmentDefinitionNode>;
  variables: Record<string, unknown>;
}

const fieldsOf = (type: GraphQLNamedType | undefined): Record<string, GraphQLField<unknown, unknown>> =>
  type && (isObjectType(type) || isInterfaceType(type)) ? type.getFields() : {};

/** The page a field fetches: undefined when it is not a paged field. */
function pageOf(field: GraphQLField<unknown, unknown> | undefined, node: FieldNode, variables: Record<string, unknown>): number | undefined {
  // A repeating element's `_count` pages a list already in memory (elementListArguments.ts): nothing is fetched.
  if (!field?.args.some((a) => a.name === '_count') || field.extensions.elementList) return undefined;
  const argument = node.arguments?.find((a) => a.name.value === '_count');
  const count = argument ? valueFromAST(argument.value, GraphQLInt, variables) : undefined;
  const page = typeof count === 'number' ? count : DEFAULT_PAGE;
  return Math.min(LIST_MAX, Math.max(1, page));
}

function measure(selectionSet: SelectionSetNode, parent: GraphQLNamedType | undefined, walk: Walk, seen: ReadonlySet<string>): Measure {
  let depth = 0;
  let aliases = 0;
  let cost = 0;
  const add = (inner: Measure, levels: number, multiplier: number, own: number) => {
    depth = Math.max(depth, levels + inner.depth);
    aliases += inner.aliases;
    cost += own + multiplier * inner.cost;
  };
  for (const sel of selectionSet.selections) {
    if (sel.kind === Kind.FIELD) {
      if (sel.alias) aliases++;
      const field = fieldsOf(parent)[sel.name.value];
      const inner = sel.selectionSet ? measure(sel.selectionSet, field ? getNamedType(field.type) : undefined, walk, seen) : { depth: 0, aliases: 0, cost: 0 };
      add(inner, 1, pageOf(field, sel, walk.variables) ?? 1, 1);
    } else if (sel.kind === Kind.INLINE_FRAGMENT) {
      const type = sel.typeCondition ? walk.schema.getType(sel.typeCondition.name.value) : parent;
      add(measure(sel.selectionSet, type ?? undefined, walk, seen), 0, 1, 0);
    } else {
      const fragment = walk.fragments.get(sel.name.value);
      // Validation refuses fragment cycles; `seen` only keeps this walk finite whatever it is given.
      if (!fragment || seen.has(sel.name.value)) continue;
      const type = walk.schema.getType(fragment.typeCondition.name.value) ?? undefined;
      add(measure(fragment.selectionSet, type, walk, new Set([...seen, sel.name.value])), 0, 1, 0);
    }
  }
  return { depth, aliases, cost };
}

/**
 * Why the operation `operationName` of `document` may not run with `variables` under `limits`, or
 * undefined. A document whose operation or variables are not valid is let through: execution refuses it
 * with its own error, having run nothing.
 */
export function limitError(
  limits: QueryLimits,
  schema: GraphQLSchema,
  document: DocumentNode,
  operationName: string | null | undefined,
  variables: Record<string, unknown> | null | undefined,
): GraphQLError | undefined {
  const operation = getOperationAST(document, operationName ?? undefined);
  if (!operation) return undefined;
  const coerced = getVariableValues(schema, operation.variableDefinitions ?? [], variables ?? {});
  if (coerced.errors) return undefined;
  const root = schema.getRootType(operation.operation) ?? undefined;
  const fragments = new Map(document.definitions.filter((d): d is FragmentDefinitionNode => d.kind === Kind.FRAGMENT_DEFINITION).map((d) => [d.name.value, d]));
  const m = measure(operation.selectionSet, root, { schema, fragments, variables: coerced.coerced }, new Set());
  const over = (what: string, value: number, max: number) => {
    const message = `The operation's ${what} is ${value}, over the limit of ${max}`;
    return new GraphQLError(message, {
      nodes: [operation],
      extensions: {
        code: 'QUERY_TOO_COMPLEX',
        [what]: value,
        limit: max,
        status: 400,
        resource: operationOutcome([{ severity: 'error', code: 'too-costly', diagnostics: message }]),
      },
    });
  };
  if (m.depth > limits.maxDepth) return over('depth', m.depth, limits.maxDepth);
  if (m.aliases > limits.maxAliases) return over('aliases', m.aliases, limits.maxAliases);
  if (m.cost > limits.maxCost) return over('cost', m.cost, limits.maxCost);
  return undefined;
}
