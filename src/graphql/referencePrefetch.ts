import { getNamedType, isAbstractType, isObjectType, Kind, type GraphQLObjectType, type GraphQLResolveInfo, type SelectionNode } from 'graphql';
import type { GraphqlContext } from './context';
import { referenceKey } from './loaders';
import { relativeTarget } from './referenceResource';

/**
 * Loads, before a list of resources is returned to graphql-js, the references its selection will follow
 * (`ObservationList(…) { encounter { resource { … } } }`), through the same batching `byId` loader, so
 * that each `Reference.resource` below answers without a promise (referenceResource.ts). Otherwise every
 * element of the list waits on its own promises, and graphql-js completes each element, and each object
 * on the way down to the Reference, asynchronously: on a record of a hundred Observations that costs more
 * than the fields themselves. The same keys are loaded in one batch as when the resolvers ask one by one.
 *
 * Only what the query is sure to follow is loaded, so no statement is added: the walk goes down fields
 * that are plain data (object types, no arguments: not reverse references, nor a repeating element given
 * list arguments such as `extension(url:)` or `performer(_count: 1)`), honours
 * `resource(type: X)` given literally and fragment type conditions, and leaves out branches under
 * `@skip`/`@include`, abstract types (`contained`) and variable arguments; those resolve as they go.
 */
interface Plan {
  /** At a Reference: the target types whose references are followed ('*': any). */
  follow: Set<string>;
  /** Fields to go down into, by name (the data's own key). */
  fields: Map<string, Plan>;
}

const ANY = '*';
const emptyPlan = (): Plan => ({ follow: new Set(), fields: new Map() });

function applies(info: GraphQLResolveInfo, condition: string | undefined, type: GraphQLObjectType): boolean {
  if (condition === undefined || condition === type.name) return true;
  const abstract = info.schema.getType(condition);
  return !!abstract && isAbstractType(abstract) && info.schema.isSubType(abstract, type);
}

function plan(info: GraphQLResolveInfo, type: GraphQLObjectType, selections: readonly SelectionNode[], into: Plan): Plan {
  for (const sel of selections) {
    if (sel.directives?.some((d) => d.name.value === 'skip' || d.name.value === 'include')) continue;
    if (sel.kind !== Kind.FIELD) {
      const fragment = sel.kind === Kind.INLINE_FRAGMENT ? sel : info.fragments[sel.name.value];
      if (fragment && applies(info, fragment.typeCondition?.name.value, type)) plan(info, type, fragment.selectionSet.selections, into);
      continue;
    }
    const name = sel.name.value;
    const field = type.getFields()[name];
    if (!field) continue;
    if (type.name === 'Reference' && name === 'resource') {
      const only = sel.arguments?.find((a) => a.name.value === 'type')?.value;
      if (!only) into.follow.add(ANY);
      else if (only.kind === Kind.ENUM) into.follow.add(only.value);
      continue;
    }
    const named = getNamedType(field.type);
    // Repeating elements take list arguments (elementListArguments.ts): gone down only when none is given.
    const plainData = field.extensions.elementList ? !sel.arguments?.length : !field.args.length;
    if (!plainData || !sel.selectionSet || !isObjectType(named)) continue;
    const below = plan(info, named, sel.selectionSet.selections, into.fields.get(name) ?? emptyPlan());
    if (below.follow.size || below.fields.size) into.fields.set(name, below);
  }
  return into;
}

function collect(value: unknown, at: Plan, endpoint: string | undefined, keys: Set<string>): void {
  if (Array.isArray(value)) {
    for (const v of value) collect(v, at, endpoint, keys);
    return;
  }
  if (!value || typeof value !== 'object') return;
  const data = value as Record<string, unknown>;
  if (at.follow.size && typeof data.reference === 'string') {
    const target = relativeTarget(data.reference);
    if (target && (at.follow.has(ANY) || at.follow.has(target.type))) keys.add(referenceKey(endpoint, target.type, target.id));
  }
  for (const [name, below] of at.fields) collect(data[name], below, endpoint, keys);
}

/** Loads the references below `value` (what the field at `info` returns) that its selection follows. */
export async function prefetchReferences(ctx: GraphqlContext, info: GraphQLResolveInfo, value: unknown, endpoint: string | undefined): Promise<void> {
  const type = getNamedType(info.returnType);
  if (!isObjectType(type)) return;
  const root = emptyPlan();
  for (const node of info.fieldNodes) if (node.selectionSet) plan(info, type, node.selectionSet.selections, root);
  if (!root.fields.size) return;
  const keys = new Set<string>();
  collect(value, root, endpoint, keys);
  const missing = [...keys].filter((k) => !ctx.loaders.settled.has(k));
  // loadMany never rejects: a failed search leaves its keys unsettled, and each resolver then meets the
  // error itself, at its own path, as before.
  if (missing.length) await ctx.loaders.byId.loadMany(missing);
}
