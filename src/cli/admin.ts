import { parseArgs } from 'node:util';
import { AdminApi, type Fetch } from './adminApi';
import { checkCommandInput, COMMANDS, OPTIONS, type AdminCommand, type OptionValues } from './adminCommands';
import { resolveAdminConnection } from './adminConnection';
import { CliError, usageError } from './cliError';

/**
 * The admin CLI (`npm run admin -- <command>`): a client of the running server's admin API, because the
 * embedded store belongs to the server process. Prints one JSON object on stdout so scripts can read it;
 * errors go to stderr with exit code 1 (2 for a usage mistake).
 */
export interface AdminIo {
  env: NodeJS.ProcessEnv;
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown; isTTY?: boolean };
  fetch?: Fetch;
  cwd?: string;
}

const GLOBAL_OPTIONS = {
  url: { type: 'string' },
  token: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

const PROGRAM = 'npm run admin --';

function globalHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.words.join(' ').length));
  const lines = COMMANDS.map((c) => `  ${c.words.join(' ').padEnd(width)}  ${c.summary}`);
  return [
    `Usage: ${PROGRAM} <command> [options]`,
    '',
    'Commands:',
    ...lines,
    '',
    'Global options:',
    '  --url URL      server to call (else $TRIBUTARY_URL, else http://localhost:$PORT if PORT is set,',
    '                 else the URL in $DATA_DIR/admin-credential.json, else http://localhost:4000)',
    '  --token TOKEN  admin token (else $ADMIN_TOKEN, else $DATA_DIR/admin-credential.json; DATA_DIR defaults to ./data)',
    '  --help, -h     this help; `<command> --help` or `help <command>` for one command',
    '',
    'Output is one JSON object on stdout (`aggregation report`: a table, or JSON with --format json). Exit codes: 0 success, 1 failure, 2 usage error.',
    '',
  ].join('\n');
}

function commandHelp(command: AdminCommand): string {
  const options = command.options.map((o) => `  --${o.padEnd(20)} ${OPTIONS[o]}${command.required?.includes(o) ? ' (required)' : ''}`);
  return [
    `Usage: ${PROGRAM} ${command.words.join(' ')} ${command.usage}`.trimEnd(),
    '',
    `${command.summary[0].toUpperCase()}${command.summary.slice(1)}.`,
    ...(options.length ? ['', 'Options:', ...options] : []),
    '',
    'Global options: --url URL, --token TOKEN (see --help).',
    '',
  ].join('\n');
}

/** The commands matching the leading words; exact match first. */
function findCommand(words: string[]): { command?: AdminCommand; group: AdminCommand[] } {
  const command = COMMANDS.find((c) => c.words.every((w, i) => words[i] === w));
  const group = COMMANDS.filter((c) => c.words[0] === words[0]);
  return { command, group };
}

export async function runAdmin(argv: string[], io: AdminIo): Promise<number> {
  try {
    const options = Object.fromEntries(Object.keys(OPTIONS).map((name) => [name, { type: 'string' as const }]));
    let parsed;
    try {
      parsed = parseArgs({ args: argv, options: { ...GLOBAL_OPTIONS, ...options }, allowPositionals: true, strict: true });
    } catch (err) {
      throw usageError((err as Error).message);
    }
    const { url, token, help, ...commandOptions } = parsed.values as OptionValues & { help?: boolean };
    let words = parsed.positionals;
    const helpWanted = help === true || words[0] === 'help';
    if (words[0] === 'help') words = words.slice(1);

    if (words.length === 0) {
      if (helpWanted) {
        io.stdout.write(globalHelp());
        return 0;
      }
      io.stderr.write(globalHelp());
      return 2;
    }
    const { command, group } = findCommand(words);
    if (!command) {
      if (helpWanted && group.length) {
        io.stdout.write(group.map(commandHelp).join('\n'));
        return 0;
      }
      if (group.length) throw usageError(`'${words[0]}' needs one of: ${group.map((c) => c.words[1]).join(', ')}`);
      throw usageError(`Unknown command '${words.join(' ')}'`);
    }
    if (helpWanted) {
      io.stdout.write(commandHelp(command));
      return 0;
    }
    const args = words.slice(command.words.length);
    checkCommandInput(command, commandOptions, args);

    const connection = await resolveAdminConnection({ url, token, env: io.env, cwd: io.cwd });
    const result = await command.run({ api: new AdminApi(connection, io.fetch ?? fetch), options: commandOptions, args, progress: io.stderr });
    io.stdout.write(command.text && commandOptions.format !== 'json' ? command.text(result) : `${JSON.stringify(result, null, 2)}\n`);
    return 0;
  } catch (err) {
    if (err instanceof CliError) {
      io.stderr.write(`error: ${err.message}\n`);
      if (err.exitCode === 2) io.stderr.write(`Run '${PROGRAM} --help' for usage.\n`);
      return err.exitCode;
    }
    io.stderr.write(`error: ${(err as Error).stack ?? String(err)}\n`);
    return 1;
  }
}

if (require.main === module) {
  void runAdmin(process.argv.slice(2), { env: process.env, stdout: process.stdout, stderr: process.stderr }).then((code) => {
    process.exitCode = code;
  });
}
