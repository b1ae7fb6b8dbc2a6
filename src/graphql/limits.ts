import { GraphQLError, Kind, type ASTVisitor, type FragmentDefinitionNode, type SelectionSetNode, type ValidationContext, type ValidationRule } from 'graphql';

/**
 * Per-operation limits, checked during validation so an over-limit operation executes nothing: selection
 * depth, number of aliases, and a cost where every field costs 1 and fields returning lists of resources
 * (…List, …Connection, reverse references) multiply what is below them by their page size.
 */
export interface QueryLimits {
  maxDepth: number;
  maxAliases: number;
  maxCost: number;
}

const LIST_PAGE = 20;

function measure(selectionSet: SelectionSetNode, fragments: Map<string, FragmentDefinitionNode>, seen: Set<string>): { depth: number; aliases: number; cost: number } {
  let depth = 0;
  let aliases = 0;
  let cost = 0;
  for (const sel of selectionSet.selections) {
    if (sel.kind === Kind.FIELD) {
      if (sel.alias) aliases++;
      const inner = sel.selectionSet ? measure(sel.selectionSet, fragments, seen) : { depth: 0, aliases: 0, cost: 0 };
      const name = sel.name.value;
      const countArg = sel.arguments?.find((a) => a.name.value === '_count');
      const page = countArg && countArg.value.kind === Kind.INT ? Number(countArg.value.value) : LIST_PAGE;
      const multiplier = /(List|Connection)$/.test(name) ? Math.max(1, page) : 1;
      depth = Math.max(depth, 1 + inner.depth);
      aliases += inner.aliases;
      cost += 1 + multiplier * inner.cost;
    } else if (sel.kind === Kind.INLINE_FRAGMENT) {
      const inner = measure(sel.selectionSet, fragments, seen);
      depth = Math.max(depth, inner.depth);
      aliases += inner.aliases;
      cost += inner.cost;
    } else {
      const fragment = fragments.get(sel.name.value);
      if (!fragment || seen.has(sel.name.value)) continue;
      const inner = measure(fragment.selectionSet, fragments, new Set([...seen, sel.name.value]));
      depth = Math.max(depth, inner.depth);
      aliases += inner.aliases;
      cost += inner.cost;
    }
  }
  return { depth, aliases, cost };
}

export function limitRule(limits: QueryLimits): ValidationRule {
  return (context: ValidationContext): ASTVisitor => {
    const fragments = new Map(context.getDocument().definitions.filter((d): d is FragmentDefinitionNode => d.kind === Kind.FRAGMENT_DEFINITION).map((d) => [d.name.value, d]));
    return {
      OperationDefinition(node) {
        const m = measure(node.selectionSet, fragments, new Set());
        const over = (what: string, value: number, max: number) =>
          context.reportError(new GraphQLError(`The operation's ${what} is ${value}, over the limit of ${max}`, { nodes: [node], extensions: { code: 'QUERY_TOO_COMPLEX', [what]: value, limit: max } }));
        if (m.depth > limits.maxDepth) over('depth', m.depth, limits.maxDepth);
        if (m.aliases > limits.maxAliases) over('aliases', m.aliases, limits.maxAliases);
        if (m.cost > limits.maxCost) over('cost', m.cost, limits.maxCost);
      },
    };
  };
}
