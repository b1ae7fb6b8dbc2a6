import { GraphQLError, Kind, type DocumentNode, type FieldNode, type FragmentDefinitionNode, type OperationDefinitionNode, type SelectionSetNode } from 'graphql';

/**
 * The FHIR GraphQL data flattening directives (graphql.html#flattening), applied to an execution result:
 * - `@first`: a list becomes its first element;
 * - `@flatten`: the field is dropped and its children go into the parent (nulls, i.e. absent elements,
 *   left out); children of a repeating field become lists (list values concatenated);
 * - `@singleton`: under a flattened repeating field, a child collates to one value, not a list (an error
 *   when there are several);
 * - `@slice(path)`: each element is named by suffixing `.` and the value at `path` (`$index`: its
 *   position; other paths were evaluated on the source data by sliceLabels.ts) to the field's name, or,
 *   with `@flatten`, to its children's names.
 */
type Json = Record<string, unknown>;
/**
 * An object of the result (graphql-js builds them without a prototype); a FHIR decimal (a LosslessNumber
 * instance, see DecimalScalar) is a scalar value, not an object whose fields could be flattened.
 */
const isObject = (v: unknown): v is Json => {
  if (!v || typeof v !== 'object') return false;
  const proto = Object.getPrototypeOf(v);
  return proto === null || proto === Object.prototype;
};

function directive(field: FieldNode, name: string) {
  return field.directives?.find((d) => d.name.value === name);
}

class Reshaper {
  readonly errors: GraphQLError[] = [];

  constructor(
    private readonly fragments: Map<string, FragmentDefinitionNode>,
    private readonly variables: Json,
    private readonly slices: ReadonlyMap<string, string>,
  ) {}

  private fields(set: SelectionSetNode, out: FieldNode[] = []): FieldNode[] {
    for (const sel of set.selections) {
      if (sel.kind === Kind.FIELD) out.push(sel);
      else if (sel.kind === Kind.INLINE_FRAGMENT) this.fields(sel.selectionSet, out);
      else {
        const f = this.fragments.get(sel.name.value);
        if (f) this.fields(f.selectionSet, out);
      }
    }
    return out;
  }

  /** Output names that collate to one value: @singleton children, also through flattened children. */
  private singletons(set: SelectionSetNode | undefined, out = new Set<string>()): Set<string> {
    for (const f of set ? this.fields(set) : []) {
      if (directive(f, 'singleton')) out.add(f.alias?.value ?? f.name.value);
      if (directive(f, 'flatten')) this.singletons(f.selectionSet, out);
    }
    return out;
  }

  private slicePath(field: FieldNode): string | undefined {
    const value = directive(field, 'slice')?.arguments?.find((a) => a.name.value === 'path')?.value;
    if (value?.kind === Kind.STRING) return value.value;
    if (value?.kind === Kind.VARIABLE) return this.variables[value.name.value] as string | undefined;
    return undefined;
  }

  private label(path: string, listPath: string, item: unknown, index: number): string {
    if (path === '$index') return String(index);
    const recorded = this.slices.get(`${listPath}.${index}`);
    if (recorded !== undefined) return recorded;
    // Not recorded (a list of primitives, or edges): the path over the selected output.
    const found = path.split('.').reduce<unknown>((v, p) => (isObject(v) ? v[p] : undefined), item);
    return String(found ?? '');
  }

  private single(value: unknown, name: string): unknown {
    if (!Array.isArray(value)) return value;
    if (value.length > 1) this.errors.push(new GraphQLError(`@singleton: '${name}' has ${value.length} values`));
    return value[0] ?? null;
  }

  value(value: unknown, set: SelectionSetNode, path: string): unknown {
    if (Array.isArray(value)) return value.map((v, i) => (isObject(v) ? this.object(v, set, `${path}.${i}`) : v));
    return isObject(value) ? this.object(value, set, path) : value;
  }

  object(data: Json, set: SelectionSetNode, path: string): Json {
    const out: Json = { ...data };
    const collated = new Set<string>();
    for (const field of this.fields(set)) {
      const key = field.alias?.value ?? field.name.value;
      if (!(key in data)) continue;
      const fieldPath = path ? `${path}.${key}` : key;
      let value = field.selectionSet ? this.value(data[key], field.selectionSet, fieldPath) : data[key];
      if (directive(field, 'first') && Array.isArray(value)) value = value[0] ?? null;
      const slice = this.slicePath(field);
      const flatten = !!directive(field, 'flatten');
      if (slice === undefined && !flatten) {
        out[key] = directive(field, 'singleton') ? this.single(value, key) : value;
        continue;
      }
      delete out[key];
      const repeating = Array.isArray(value);
      const parts: [string, unknown][] =
        slice === undefined
          ? [['', value]]
          : (repeating ? (value as unknown[]) : value == null ? [] : [value]).map((item, i) => [`.${this.label(slice, fieldPath, item, i)}`, item]);
      const singles = flatten ? this.singletons(field.selectionSet) : new Set<string>();
      for (const [suffix, item] of parts) {
        if (!flatten) {
          out[key + suffix] = item;
          continue;
        }
        for (const element of Array.isArray(item) ? item : [item]) {
          if (!isObject(element)) continue;
          for (const [child, v] of Object.entries(element)) {
            const name = child + suffix;
            // A null is an absent FHIR element: it adds nothing to the flattened parent.
            if (v === null || v === undefined) continue;
            if (!repeating) out[name] = v;
            else if (singles.has(child.split('.')[0])) {
              if (collated.has(name)) this.errors.push(new GraphQLError(`@singleton: '${name}' has more than one value`));
              else out[name] = this.single(v, name);
              collated.add(name);
            } else out[name] = [...((out[name] as unknown[] | undefined) ?? []), ...(Array.isArray(v) ? v : [v])];
          }
        }
      }
    }
    return out;
  }
}

export function usesOutputDirectives(document: DocumentNode): boolean {
  let found = false;
  const visit = (set: SelectionSetNode | undefined) => {
    for (const sel of set?.selections ?? []) {
      if (sel.directives?.some((d) => ['flatten', 'first', 'singleton', 'slice'].includes(d.name.value))) found = true;
      if (sel.kind !== Kind.FRAGMENT_SPREAD) visit(sel.selectionSet);
    }
  };
  for (const d of document.definitions) if (d.kind === Kind.OPERATION_DEFINITION || d.kind === Kind.FRAGMENT_DEFINITION) visit(d.selectionSet);
  return found;
}

export function applyOutputDirectives(
  data: Json,
  document: DocumentNode,
  options: { operationName?: string | null; variables?: Json; slices?: ReadonlyMap<string, string> } = {},
): { data: Json; errors: GraphQLError[] } {
  const fragments = new Map(document.definitions.filter((d): d is FragmentDefinitionNode => d.kind === Kind.FRAGMENT_DEFINITION).map((d) => [d.name.value, d]));
  const operations = document.definitions.filter((d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION);
  const operation = operations.find((o) => !options.operationName || o.name?.value === options.operationName) ?? operations[0];
  const reshaper = new Reshaper(fragments, options.variables ?? {}, options.slices ?? new Map());
  return { data: operation ? reshaper.object(data, operation.selectionSet, '') : data, errors: reshaper.errors };
}
