import { GraphQLBoolean, type GraphQLEnumType, type GraphQLFieldConfig, type GraphQLInterfaceType } from 'graphql';
import { ID_SOURCE } from '../fhir/ids';
import { notFound } from '../fhir/outcome';
import type { Resource } from '../fhir/types';
import type { GraphqlContext } from './context';
import { referenceKey } from './loaders';

/**
 * `Reference.resource` (graphql.html#references): resolves the reference against the endpoint the
 * Reference came from (through the per-request loader), or a `#id` against the containing resource's
 * `contained`. `type: Patient` only follows references to that type (others give null); an unresolvable
 * reference is an error unless `optional: true`. A Reference with no `reference` (identifier or display
 * only) has nothing to follow and gives null; a versioned reference resolves to the current version.
 */
const RELATIVE = new RegExp(`^([A-Z][A-Za-z]+)/(${ID_SOURCE})(?:/_history/${ID_SOURCE})?$`);

/** The type and id a relative reference (`Patient/1`, `Patient/1/_history/2`) points to; else undefined. */
export function relativeTarget(reference: string): { type: string; id: string } | undefined {
  const m = RELATIVE.exec(reference);
  return m ? { type: m[1], id: m[2] } : undefined;
}

export function referenceResourceField(resourceInterface: GraphQLInterfaceType, resourceType: GraphQLEnumType): GraphQLFieldConfig<Record<string, unknown>, GraphqlContext> {
  return {
    type: resourceInterface,
    args: {
      type: { type: resourceType, description: 'Only follow references to this resource type' },
      optional: { type: GraphQLBoolean, description: 'true: an unresolvable reference gives null instead of an error' },
    },
    // Not async: a reference already loaded (referencePrefetch.ts) is answered without a promise, so
    // graphql-js completes the elements of a list synchronously instead of one promise chain each.
    resolve: (ref, args: { type?: string; optional?: boolean }, ctx) => {
      const reference = ref.reference;
      if (typeof reference !== 'string') return null;
      const origin = ctx.origin.get(ref) ?? {};
      const fail = () => {
        if (args.optional) return null;
        throw notFound(`The reference '${reference}' cannot be resolved`);
      };
      if (reference.startsWith('#')) {
        const contained = (origin.resource?.contained as Resource[] | undefined)?.find((r) => r.id === reference.slice(1));
        if (!contained) return fail();
        if (args.type && contained.resourceType !== args.type) return null;
        ctx.origin.set(contained, origin);
        return contained;
      }
      const target = relativeTarget(reference);
      if (!target) return fail();
      if (args.type && args.type !== target.type) return null;
      const answer = (found: Resource | null | undefined) => {
        if (!found) return fail();
        ctx.origin.set(found, { endpoint: origin.endpoint, resource: found });
        return found;
      };
      const key = referenceKey(origin.endpoint, target.type, target.id);
      return ctx.loaders.settled.has(key) ? answer(ctx.loaders.settled.get(key)) : ctx.loaders.byId.load(key).then(answer);
    },
  };
}
