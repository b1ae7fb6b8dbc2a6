import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { npmNodeCommand } from '../../bench/lib/npmScript';
import { ROOT } from '../../bench/lib/server';

const run = promisify(execFile);

/**
 * The memory settings (package.json `config`: node flags, glibc arenas) reach every way the server and the
 * worker are started: `npm start`, `npm run worker`, and the bench, which reads the same scripts.
 */
test('npm start and npm run worker carry the memory settings of package.json, as the bench reads them', async () => {
  const start = npmNodeCommand(ROOT, 'start', 'dist/src/server.js');
  const worker = npmNodeCommand(ROOT, 'worker', 'dist/src/aggregator/workerMain.js');
  for (const command of [start, worker]) {
    expect(command.nodeArgs).toEqual(expect.arrayContaining(['--heap-growing-percent=100']));
    expect(command.env).toEqual({ MALLOC_ARENA_MAX: '2' });
  }
  expect(start.nodeArgs).toEqual(['--max-semi-space-size=32', '--heap-growing-percent=100']);
  // The worker process holds no server: its young generation stays larger (the later flag wins).
  expect(worker.nodeArgs.at(-1)).toBe('--max-semi-space-size=64');

  // npm hands `config` to its scripts as the variables the scripts expand.
  const { stdout } = await run('npm', ['run', '--silent', 'env'], { cwd: ROOT, env: { ...process.env, NODE_OPTIONS: '' } });
  expect(stdout).toContain('npm_package_config_node_flags=--max-semi-space-size=32 --heap-growing-percent=100');
  expect(stdout).toContain('npm_package_config_malloc_arena_max=2');

  // This node takes the flags, and the process sees the environment.
  const probe = await run(process.execPath, [...start.nodeArgs, '-e', 'console.log(JSON.stringify([process.execArgv, process.env.MALLOC_ARENA_MAX]))'], {
    env: { ...process.env, NODE_OPTIONS: '', ...start.env },
  });
  expect(JSON.parse(probe.stdout)).toEqual([expect.arrayContaining(start.nodeArgs), '2']);
});

test('a script that does not end in the node command is refused', () => {
  expect(() => npmNodeCommand(ROOT, 'lint', 'dist/src/server.js')).toThrow(/does not end in 'node … dist\/src\/server.js'/);
  expect(() => npmNodeCommand(ROOT, 'no-such-script', 'dist/src/server.js')).toThrow(/no script 'no-such-script'/);
});
