import fhirpath from 'fhirpath';
import { Kind, type GraphQLResolveInfo } from 'graphql';
import { badRequest } from '../fhir/outcome';
import type { GraphqlContext } from './context';

/**
 * `@slice(path: "use")` names each list element by a FHIRPath evaluated on the *source* element, which
 * need not be selected (graphql.html#flattening: `name @slice(path: "use") { given }` → `given.official`).
 * List resolvers call this while they still hold the source data; the labels are kept by response path
 * (`Patient.name.0`) for directives.ts, which reshapes the result after execution. `$index` needs no source.
 */
export const responsePath = (path: GraphQLResolveInfo['path'] | undefined): string => {
  const keys: (string | number)[] = [];
  for (let p = path; p; p = p.prev) keys.push(p.key);
  return keys.reverse().join('.');
};

/** Passes a list result through, recording its `@slice` labels when the field has one. */
export function sliced<T>(ctx: GraphqlContext, info: GraphQLResolveInfo, list: T): T {
  if (Array.isArray(list) && info.fieldNodes[0].directives?.length) recordSliceLabels(ctx, info, list);
  return list;
}

function recordSliceLabels(ctx: GraphqlContext, info: GraphQLResolveInfo, list: unknown[]): void {
  const slice = info.fieldNodes[0].directives?.find((d) => d.name.value === 'slice');
  const arg = slice?.arguments?.find((a) => a.name.value === 'path')?.value;
  const path = arg?.kind === Kind.STRING ? arg.value : arg?.kind === Kind.VARIABLE ? (info.variableValues[arg.name.value] as string | undefined) : undefined;
  if (!path || path === '$index') return;
  const base = responsePath(info.path);
  ctx.slices ??= new Map();
  list.forEach((element, i) => {
    let values: unknown[];
    try {
      values = fhirpath.evaluate(element as object, path) as unknown[];
    } catch (err) {
      throw badRequest(`@slice(path: "${path}") is not a FHIRPath expression this server can evaluate: ${(err as Error).message}`);
    }
    (ctx.slices as Map<string, string>).set(`${base}.${i}`, values.map(String).join(','));
  });
}
