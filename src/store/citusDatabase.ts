import pg from 'pg';

/**
 * A fresh database on a Citus cluster, for the test suite and the bench (one database per test file or run).
 * Citus keeps its metadata per database, so a new database is not distributed until the citus extension is
 * created in it on every node and the nodes are registered in it again. The cluster is read from the database
 * `adminUrl` names on the coordinator, where the operator set it up once (`citus_set_coordinator_host`,
 * `citus_add_node`): its `pg_dist_node`.
 */

export interface CitusNode {
  host: string;
  port: number;
  isCoordinator: boolean;
}

/** The nodes registered in the database `adminUrl` names; empty when it has no citus extension. */
export async function citusNodes(adminUrl: string): Promise<CitusNode[]> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const ext = await client.query(`SELECT 1 FROM pg_extension WHERE extname = 'citus'`);
    if (ext.rowCount === 0) return [];
    const nodes = await client.query<{ nodename: string; nodeport: number; groupid: number }>(
      `SELECT nodename, nodeport, groupid FROM pg_dist_node WHERE noderole = 'primary' ORDER BY groupid`,
    );
    return nodes.rows.map((n) => ({ host: n.nodename, port: n.nodeport, isCoordinator: n.groupid === 0 }));
  } finally {
    await client.end();
  }
}

/**
 * Creates database `name` on every node of the cluster behind `adminUrl`, with the citus extension, and
 * registers the same nodes in it; returns its URL on the coordinator.
 */
export async function createCitusDatabase(adminUrl: string, name: string): Promise<string> {
  requireIdentifier(name);
  const nodes = await citusNodes(adminUrl);
  const workers = nodes.filter((n) => !n.isCoordinator);
  if (workers.length === 0) throw new Error(`CITUS=on but ${redact(adminUrl)} has no citus extension with worker nodes registered (citus_add_node)`);
  const coordinator = nodes.find((n) => n.isCoordinator) ?? { host: new URL(adminUrl).hostname, port: Number(new URL(adminUrl).port || 5432) };
  for (const node of workers) {
    await onNode(adminUrl, node, 'postgres', `CREATE DATABASE ${name}`);
    await onNode(adminUrl, node, name, 'CREATE EXTENSION citus');
  }
  await run(adminUrl, `CREATE DATABASE ${name}`);
  const url = withDatabase(adminUrl, name);
  await run(url, 'CREATE EXTENSION citus');
  await run(url, `SELECT citus_set_coordinator_host('${coordinator.host}', ${coordinator.port})`);
  for (const node of workers) await run(url, `SELECT citus_add_node('${node.host}', ${node.port})`);
  return url;
}

/** Drops database `name` on the coordinator and every worker (forcing its connections closed). */
export async function dropCitusDatabase(adminUrl: string, name: string): Promise<void> {
  requireIdentifier(name);
  const workers = (await citusNodes(adminUrl)).filter((n) => !n.isCoordinator);
  await run(adminUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  for (const node of workers) await onNode(adminUrl, node, 'postgres', `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
}

/** Connects to a node with the admin URL's credentials (a worker trusts the coordinator's user). */
function onNode(adminUrl: string, node: { host: string; port: number }, database: string, sql: string): Promise<void> {
  const url = new URL(adminUrl);
  url.hostname = node.host;
  url.port = String(node.port);
  url.pathname = `/${database}`;
  return run(url.toString(), sql);
}

async function run(url: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

function withDatabase(adminUrl: string, name: string): string {
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

function requireIdentifier(name: string): void {
  if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`not a plain database name: ${name}`);
}

function redact(url: string): string {
  return url.replace(/:[^:@/]*@/, ':***@');
}
