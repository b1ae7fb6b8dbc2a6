#!/usr/bin/env node
'use strict';
/**
 * Builds the pre-migrated embedded database that a new data folder starts from (dist/src/store/pgliteTemplate.js),
 * unless the one for the current migrations is already there. Run by postinstall; a failure only costs the
 * first start its speed, so it warns and exits 0.
 */
const path = require('node:path');

const started = Date.now();
require(path.join(__dirname, '..', 'dist/src/store/pgliteTemplate.js'))
  .buildPgliteTemplate()
  .then(({ dir, built }) => {
    if (built) console.error(`Built the embedded database template in ${path.relative(process.cwd(), dir)} (${Date.now() - started} ms)`);
  })
  .catch((err) => {
    console.error(`warning: could not build the embedded database template (the first start will create the database itself): ${err.message}`);
  });
