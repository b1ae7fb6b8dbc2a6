import { Column, InSubquery, SelectQuery, type SqlContext, type SqlNode, Table } from '../sql/sqlTree';

/**
 * One index-table lookup as a condition on a `resource` row: `r.pk IN (SELECT i.resource_pk FROM search_x i
 * WHERE i.key = … AND …)`, `key` standing for (store, type, parameter) (see indexKey.ts), so the planner can
 * drive from the index. Its columns are qualified by its own alias, so the same lookup can also be the FROM of
 * a query that reads a page straight off the index in resource_pk order (SearchService's driver).
 */
export class IndexLookup implements SqlNode {
  constructor(
    /** The index table, with this lookup's alias. */
    readonly table: Table,
    /** The resource type whose rows it finds. */
    readonly type: string,
    /** The `resource` row it constrains. */
    readonly owner: string,
    readonly key: SqlNode,
    readonly where: SqlNode,
  ) {}

  get resourcePk(): Column {
    return this.table.column('resource_pk');
  }

  rows(): SelectQuery {
    return new SelectQuery({ columns: [this.resourcePk], from: this.table, where: [this.key, this.where] });
  }

  render(ctx: SqlContext): string {
    return new InSubquery(new Column(this.owner, 'pk'), this.rows()).render(ctx);
  }
}
