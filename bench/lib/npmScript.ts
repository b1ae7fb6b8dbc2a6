import { readFileSync } from 'node:fs';
import path from 'node:path';

/**
 * How an npm script of package.json starts node — the environment it sets and the node options before the
 * entry file — with `$npm_package_config_*` expanded from package.json's `config` as npm does. The bench
 * starts the server and workers from this, so they run with the memory settings `npm start` and
 * `npm run worker` use (README Operations, "Memory"), kept in one place.
 */
export interface NodeCommand {
  env: Record<string, string>;
  nodeArgs: string[];
}

export function npmNodeCommand(root: string, script: string, entry: string): NodeCommand {
  const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { config?: Record<string, string>; scripts: Record<string, string> };
  const text = pkg.scripts[script];
  if (!text) throw new Error(`package.json has no script '${script}'`);
  const expanded = text.replace(/\$\{?npm_package_config_(\w+)\}?/g, (_, key: string) => pkg.config?.[key] ?? '');
  // The last command of the script is the one that starts node (earlier ones build).
  const words = expanded.split('&&').at(-1)!.trim().split(/\s+/);
  const env: Record<string, string> = {};
  let i = 0;
  for (; i < words.length && /^[A-Z_][A-Z0-9_]*=/.test(words[i]); i++) {
    const eq = words[i].indexOf('=');
    env[words[i].slice(0, eq)] = words[i].slice(eq + 1);
  }
  if (words[i] !== 'node' || words.at(-1) !== entry) throw new Error(`package.json script '${script}' does not end in 'node … ${entry}': ${text}`);
  return { env, nodeArgs: words.slice(i + 1, -1) };
}
