// The read floor: a bare node:http server answering GET /<pk> with one primary-key SELECT over the same
// driver (pg) and pool size as the server under test. `node floorServer.mjs <databaseUrl> <port>`.
import http from 'node:http';
import { createRequire } from 'node:module';
const require = createRequire(import.meta.url);
const pg = require('pg');

const [databaseUrl, port] = process.argv.slice(2);
const pool = new pg.Pool({ connectionString: databaseUrl, max: 10 });
const server = http.createServer(async (req, res) => {
  try {
    const { rows } = await pool.query('SELECT content FROM resource WHERE store = $1 AND type = $2 AND id = $3', req.url.slice(1).split('/'));
    res.writeHead(rows.length ? 200 : 404, { 'content-type': 'application/fhir+json' });
    res.end(JSON.stringify(rows[0]?.content ?? null));
  } catch (err) {
    res.writeHead(500);
    res.end(String(err));
  }
});
server.listen(Number(port), '127.0.0.1', () => process.stdout.write('ready\n'));
