import { existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { notFound, OperationOutcomeError, operationOutcome } from '../fhir/outcome';

/**
 * The browser pages, built from app/ by Vite into dist/web at install (scripts/build-web.js): the record
 * viewer at /app, the offline GraphQL explorer at /graphiql, and their assets under /ui/. Served from
 * this process, so a closed network needs nothing else. Assets carry a content hash in their names and
 * are cached for a year; the pages themselves are not cached, so a new build is picked up at once.
 */
export interface WebPages {
  /** The built explorer page, for /graphql's landing page (undefined when the pages are not built). */
  graphiqlHtml(): string | undefined;
}

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.html': 'text/html; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.woff2': 'font/woff2',
  '.woff': 'font/woff',
  '.ttf': 'font/ttf',
  '.json': 'application/json',
};

/** The checkout's root: the first folder above this module holding package.json (src/web or dist/src/web). */
function projectRoot(): string {
  let dir = __dirname;
  while (!existsSync(path.join(dir, 'package.json')) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  return dir;
}

export const WEB_DIR = path.join(projectRoot(), 'dist/web');

function notBuilt(page: string): OperationOutcomeError {
  return new OperationOutcomeError(
    503,
    operationOutcome([{ severity: 'error', code: 'not-found', diagnostics: `The ${page} is not built: run \`npm run build\` (it needs the dev dependencies)` }]),
  );
}

/** Mounts /app, /graphiql (when `explorer` is on) and /ui/*; answers which pages exist. */
export function mountWebPages(app: FastifyInstance, options: { explorer: boolean; dir?: string }): WebPages {
  const dir = options.dir ?? WEB_DIR;
  const pageCache = new Map<string, string>();
  const page = (file: string): string | undefined => {
    let html = pageCache.get(file);
    if (html === undefined) {
      try {
        html = readFileSync(path.join(dir, file), 'utf8');
      } catch {
        return undefined;
      }
      pageCache.set(file, html);
    }
    return html;
  };
  const sendPage = (file: string, name: string) => async (_request: unknown, reply: FastifyReply) => {
    const html = page(file);
    if (html === undefined) throw notBuilt(name);
    return reply.header('cache-control', 'no-cache').type('text/html; charset=utf-8').send(html);
  };

  app.get('/app', sendPage('viewer/index.html', 'record viewer'));
  // Client-side routes under /app/… all get the same page.
  app.get('/app/*', sendPage('viewer/index.html', 'record viewer'));
  if (options.explorer) app.get('/graphiql', sendPage('graphiql/index.html', 'GraphQL explorer'));

  const assets = path.join(dir, 'assets');
  app.get('/ui/assets/:file', async (request, reply) => {
    const { file } = request.params as { file: string };
    // One flat folder of generated names: anything with a path separator or a leading dot is not ours.
    const type = TYPES[path.extname(file)];
    if (!/^[\w.-]+$/.test(file) || file.startsWith('.') || !type) throw notFound(`No asset '${file}'`);
    let body: Buffer;
    try {
      body = await readFile(path.join(assets, file));
    } catch {
      throw notFound(`No asset '${file}'`);
    }
    return reply.header('cache-control', 'public, max-age=31536000, immutable').type(type).send(body);
  });

  return { graphiqlHtml: () => (options.explorer ? page('graphiql/index.html') : undefined) };
}
