import { Kind, type DocumentNode, type FieldNode, type FragmentDefinitionNode, type OperationDefinitionNode, type SelectionSetNode } from 'graphql';

/**
 * The FHIR GraphQL output directives (graphql.html#directives), applied to an execution result:
 * @first and @singleton turn a list into its first element; @flatten drops the field and puts its
 * children in the parent (children of a flattened list become lists); @slice(path) splits a list into
 * fields named `<field>.<value at path>`.
 */
type Json = Record<string, unknown>;

function directive(field: FieldNode, name: string) {
  return field.directives?.find((d) => d.name.value === name);
}

function apply(data: unknown, selectionSet: SelectionSetNode, fragments: Map<string, FragmentDefinitionNode>): unknown {
  if (Array.isArray(data)) return data.map((d) => apply(d, selectionSet, fragments));
  if (!data || typeof data !== 'object') return data;
  const obj = { ...(data as Json) };
  const fields: FieldNode[] = [];
  const collect = (set: SelectionSetNode) => {
    for (const sel of set.selections) {
      if (sel.kind === Kind.FIELD) fields.push(sel);
      else if (sel.kind === Kind.INLINE_FRAGMENT) collect(sel.selectionSet);
      else {
        const f = fragments.get(sel.name.value);
        if (f) collect(f.selectionSet);
      }
    }
  };
  collect(selectionSet);
  for (const field of fields) {
    const key = field.alias?.value ?? field.name.value;
    if (!(key in obj)) continue;
    let value = obj[key];
    if (field.selectionSet) value = apply(value, field.selectionSet, fragments);
    if ((directive(field, 'first') || directive(field, 'singleton')) && Array.isArray(value)) value = value[0] ?? null;
    const slice = directive(field, 'slice');
    if (slice && Array.isArray(value)) {
      const pathArg = slice.arguments?.find((a) => a.name.value === 'path')?.value;
      const path = pathArg && pathArg.kind === Kind.STRING ? pathArg.value : '';
      delete obj[key];
      for (const item of value) {
        const label = path.split('.').reduce<unknown>((v, p) => (v && typeof v === 'object' ? (v as Json)[p] : undefined), item);
        obj[`${key}.${String(label)}`] = item;
      }
      continue;
    }
    if (directive(field, 'flatten')) {
      delete obj[key];
      const children = Array.isArray(value) ? value : [value];
      for (const child of children) {
        if (!child || typeof child !== 'object') continue;
        for (const [k, v] of Object.entries(child as Json)) {
          if (Array.isArray(value)) obj[k] = [...((obj[k] as unknown[]) ?? []), ...(Array.isArray(v) ? v : [v])];
          else obj[k] = v;
        }
      }
      continue;
    }
    obj[key] = value;
  }
  return obj;
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

export function applyOutputDirectives(data: unknown, document: DocumentNode, operationName?: string | null): unknown {
  const fragments = new Map(document.definitions.filter((d): d is FragmentDefinitionNode => d.kind === Kind.FRAGMENT_DEFINITION).map((d) => [d.name.value, d]));
  const operations = document.definitions.filter((d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION);
  const operation = operations.find((o) => !operationName || o.name?.value === operationName) ?? operations[0];
  return operation ? apply(data, operation.selectionSet, fragments) : data;
}
