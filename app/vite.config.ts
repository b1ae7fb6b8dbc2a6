/**
 * Builds the browser pages the server serves (src/web/webAssets.ts): the record viewer (`/app`) and the
 * offline GraphQL explorer (`/graphiql`), from npm packages only: nothing is fetched at run time. One build,
 * two pages sharing their chunks (React); every asset under /ui/ with a content hash in its name.
 * Run by scripts/build-web.js at install and by `npm start` when the sources changed.
 */
import { resolve } from 'node:path';
import { defineConfig } from 'vite';

export default defineConfig({
  root: __dirname,
  base: '/ui/',
  logLevel: 'warn',
  // TSX through esbuild's automatic runtime: no Babel plugin to install.
  esbuild: { jsx: 'automatic' },
  build: {
    outDir: resolve(__dirname, '../dist/web'),
    emptyOutDir: true,
    // Source maps double the build time and size; the pages are small enough to read as they are.
    sourcemap: false,
    reportCompressedSize: false,
    chunkSizeWarningLimit: 4096,
    rollupOptions: {
      // React libraries mark their modules "use client"; meaningless in a plain bundle, so not worth a warning.
      onwarn(warning, warn) {
        if (warning.code !== 'MODULE_LEVEL_DIRECTIVE') warn(warning);
      },
      input: { viewer: resolve(__dirname, 'viewer/index.html'), graphiql: resolve(__dirname, 'graphiql/index.html') },
    },
  },
});
