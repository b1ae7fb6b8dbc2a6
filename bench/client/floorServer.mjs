// The read floor: a bare node:http server answering GET /<store>/<type>/<id> with one primary-key SELECT,
// over the same driver and pool size as the server under test, prepared as the server's is.
//   node floorServer.mjs <port> pg <databaseUrl>          — the server's own `resource` table on PostgreSQL
//   node floorServer.mjs <port> pglite <dir> <rows.json>  — a PGlite store in <dir> loaded with <rows.json>
//     ([{ store, type, id, content }]): PGlite is one process's store, so the floor keeps its own copy.
// Prints `ready` once listening.
import http from 'node:http';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
const require = createRequire(import.meta.url);

const [port, kind, target, rowsFile] = process.argv.slice(2);
const SELECT = 'SELECT content FROM resource WHERE store = $1 AND type = $2 AND id = $3';
let query;
if (kind === 'pg') {
  const pg = require('pg');
  const pool = new pg.Pool({ connectionString: target, max: 10 });
  // Prepared, as the server's key read is (src/store/preparedStatements.ts): the floor is the best a bare server does.
  query = async (params) => (await pool.query({ name: 'floor_read', text: SELECT, values: params })).rows;
} else {
  const { PGlite } = await import('@electric-sql/pglite');
  const db = new PGlite(target);
  await db.waitReady;
  await db.exec(
    'CREATE TABLE IF NOT EXISTS resource (pk BIGSERIAL PRIMARY KEY, store TEXT NOT NULL, type TEXT NOT NULL, id TEXT NOT NULL, content JSONB); CREATE UNIQUE INDEX IF NOT EXISTS resource_key ON resource (store, type, id)',
  );
  const rows = JSON.parse(readFileSync(rowsFile, 'utf8'));
  for (let i = 0; i < rows.length; i += 500) {
    const slice = rows.slice(i, i + 500);
    await db.query('INSERT INTO resource (store, type, id, content) SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::jsonb[]) ON CONFLICT DO NOTHING', [
      slice.map((r) => r.store),
      slice.map((r) => r.type),
      slice.map((r) => r.id),
      slice.map((r) => JSON.stringify(r.content)),
    ]);
  }
  query = async (params) => (await db.query(SELECT, params)).rows;
}

const server = http.createServer(async (req, res) => {
  try {
    const rows = await query(req.url.slice(1).split('/'));
    res.writeHead(rows.length ? 200 : 404, { 'content-type': 'application/fhir+json' });
    res.end(JSON.stringify(rows[0]?.content ?? null));
  } catch (err) {
    res.writeHead(500);
    res.end(String(err));
  }
});
server.listen(Number(port), '127.0.0.1', () => process.stdout.write('ready\n'));
