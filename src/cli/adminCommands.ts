import { readFile } from 'node:fs/promises';
import type { AdminApi } from './adminApi';
import { usageError } from './cliError';
import { runImport } from './importCommand';
import { formatReport } from './reportTable';
import type { AggregationReport } from '../aggregator/report';
import { runImportNative } from './importNativeCommand';

/**
 * The admin CLI's commands, one table: adding a command (e.g. `import`) is adding an entry.
 * Each maps its options onto one admin API call and returns the JSON object to print.
 */
export type OptionValues = Record<string, string | undefined>;

export interface CommandContext {
  api: AdminApi;
  options: OptionValues;
  /** Positional arguments after the command words. */
  args: string[];
  /** Where long-running commands report progress (stderr). */
  progress?: { write(text: string): unknown; isTTY?: boolean };
}

export interface AdminCommand {
  /** The command words, e.g. `['customer', 'create']`. */
  words: string[];
  /** Usage line after the command words. */
  usage: string;
  summary: string;
  /** Names of the command's own options (see OPTIONS); the global ones are always allowed. */
  options: string[];
  required?: string[];
  /** Number of positional arguments expected. */
  positionals?: string[];
  /** The last positional may repeat (one or more). */
  variadic?: boolean;
  /** The positionals may be left out (an older spelling of an option). */
  optionalPositionals?: boolean;
  run(ctx: CommandContext): Promise<unknown>;
  /** Text to print instead of the JSON, unless `--format json` is given. */
  text?(result: unknown): string;
}

/** Every option any command takes, for the argument parser; all take a value. */
export const OPTIONS: Record<string, string> = {
  name: 'a human-readable name',
  customer: 'a customer id (cus-…)',
  'fhir-version': 'R4 or STU3',
  'default-source-org': 'Organization/<id>: source organisation of resources whose patient names none',
  family: 'token family: fhir or legacy',
  scopes: 'space-separated SMART scopes the client may request (default: system/*.cruds)',
  scope: 'the same as --scopes (older spelling)',
  endpoint: 'an endpoint id (ep-…)',
  enabled: 'true or false: whether the endpoint accepts FHIR requests',
  client: 'an API client id (cli-…)',
  organization: 'an organisation id (org-…)',
  team: 'a team id (team-…)',
  practitioner: 'a practitioner id (prac-…)',
  alias: "a team's alias, unique within its organisation (how messages name the team)",
  patient: 'an aggregated Patient id',
  grantee: 'who is granted: a team (team-… or CareTeam/team-…) or a practitioner (prac-… or Practitioner/prac-…)',
  frozen: "true or false: whether the patient's own access is frozen",
  label: 'privacy label: GENERAL_HEALTH, MENTAL_HEALTH, SEXUAL_HEALTH or SOCIAL_CARE',
  'timeout-ms': 'how long to wait, in milliseconds (default 30000)',
  concurrency: 'requests in flight (default 4)',
  format: 'text (a table, the default) or json',
  jwks: 'a JSON file holding the public keys (JWKS) the client signs its private_key_jwt assertions with',
};

/** The JSON content of a file named by an option; a usage error names the option when it cannot be read. */
async function jsonFile(file: string, option: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw usageError(`${option}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  try {
    return JSON.parse(text);
  } catch {
    throw usageError(`${option}: ${file} is not valid JSON`);
  }
}

/** `--scopes`, or its older spelling `--scope`; both given must agree. */
function scopesOption(options: OptionValues): string | undefined {
  const { scopes, scope } = options;
  if (scopes !== undefined && scope !== undefined && scopes !== scope) throw usageError('Give --scopes once (--scope is its older spelling)');
  return scopes ?? scope;
}

/** The client id from `--client`, or from the positional argument older scripts pass. */
function clientOption(name: string, options: OptionValues, args: string[]): string {
  const id = options.client ?? args[0];
  if (!id) throw usageError(`'${name}' needs --client`);
  if (options.client !== undefined && args[0] !== undefined && args[0] !== options.client) throw usageError(`Give the client id once: --client ${options.client}`);
  return id;
}

/** An option that may be cleared: an empty value (`--name ''`) clears it, a missing one leaves it. */
const clearable = (value: string | undefined) => (value === '' ? null : value);

/** `true`/`false` as booleans; anything else is passed on for the server to refuse in its own words. */
const booleanOption = (value: string | undefined) => (value === 'true' ? true : value === 'false' ? false : value);

const query = (customer: string | undefined) => (customer ? `?customerId=${encodeURIComponent(customer)}` : '');

export const COMMANDS: AdminCommand[] = [
  {
    words: ['customer', 'create'],
    usage: '--name NAME',
    summary: 'create a customer',
    options: ['name'],
    required: ['name'],
    run: ({ api, options }) => api.call('POST', '/admin/customers', { name: options.name }),
  },
  {
    words: ['customer', 'list'],
    usage: '',
    summary: 'list customers',
    options: [],
    run: ({ api }) => api.call('GET', '/admin/customers'),
  },
  {
    words: ['endpoint', 'create'],
    usage: '--customer ID --fhir-version R4|STU3 [--name NAME] [--default-source-org Organization/ID]',
    summary: 'create a FHIR endpoint (one per inbound feed) for a customer',
    options: ['customer', 'fhir-version', 'name', 'default-source-org'],
    required: ['customer', 'fhir-version'],
    run: ({ api, options }) =>
      api.call('POST', '/admin/endpoints', {
        customerId: options.customer,
        fhirVersion: options['fhir-version'],
        name: options.name,
        defaultSourceOrg: options['default-source-org'],
      }),
  },
  {
    words: ['endpoint', 'update'],
    usage: '--endpoint ID [--name NAME] [--default-source-org Organization/ID] [--enabled true|false]',
    summary: "change an endpoint's name, default source organisation (re-aggregates its resources) or enabled flag ('' clears)",
    options: ['endpoint', 'name', 'default-source-org', 'enabled'],
    required: ['endpoint'],
    run: ({ api, options }) => {
      if (options.name === undefined && options['default-source-org'] === undefined && options.enabled === undefined) {
        throw usageError("'endpoint update' needs at least one of --name, --default-source-org, --enabled");
      }
      return api.call('PATCH', `/admin/endpoints/${encodeURIComponent(options.endpoint as string)}`, {
        name: clearable(options.name),
        defaultSourceOrg: clearable(options['default-source-org']),
        enabled: booleanOption(options.enabled),
      });
    },
  },
  {
    words: ['endpoint', 'disable'],
    usage: '--endpoint ID',
    summary: 'disable an endpoint: its FHIR requests are refused from now on; its data stays aggregated',
    options: ['endpoint'],
    required: ['endpoint'],
    run: ({ api, options }) => api.call('POST', `/admin/endpoints/${encodeURIComponent(options.endpoint as string)}/disable`),
  },
  {
    words: ['endpoint', 'list'],
    usage: '[--customer ID]',
    summary: 'list endpoints, all or one customer’s',
    options: ['customer'],
    run: ({ api, options }) => api.call('GET', `/admin/endpoints${query(options.customer)}`),
  },
  {
    words: ['client', 'create'],
    usage: '--customer ID|--organization ID --family fhir|legacy [--team ID|--practitioner ID] [--name NAME] [--scopes "SCOPES"] [--jwks FILE]',
    summary:
      "create an API client acting for an organisation (default: the customer's default one), optionally bound to one of its teams or practitioners; prints client_id and client_secret (the secret is shown only this once); --jwks registers public keys for private_key_jwt",
    options: ['customer', 'organization', 'team', 'practitioner', 'family', 'name', 'scopes', 'scope', 'jwks'],
    required: ['family'],
    run: async ({ api, options }) =>
      api.call('POST', '/admin/clients', {
        customerId: options.customer,
        organizationId: options.organization,
        teamId: options.team,
        practitionerId: options.practitioner,
        family: options.family,
        name: options.name,
        scopes: scopesOption(options),
        jwks: options.jwks === undefined ? undefined : await jsonFile(options.jwks, '--jwks'),
      }),
  },
  {
    words: ['keys', 'rotate'],
    usage: '[--family fhir|legacy]',
    summary: 'make a new access-token signing key (both families unless one is named); the old key verifies until its tokens expire',
    options: ['family'],
    run: ({ api, options }) => api.call('POST', '/admin/keys/rotate', options.family === undefined ? {} : { family: options.family }),
  },
  {
    words: ['client', 'list'],
    usage: '[--customer ID]',
    summary: 'list API clients (never their secrets), all or one customer’s',
    options: ['customer'],
    run: ({ api, options }) => api.call('GET', `/admin/clients${query(options.customer)}`),
  },
  {
    words: ['client', 'revoke'],
    usage: '--client ID',
    summary: 'revoke an API client: it gets no new tokens (issued ones expire within their short lifetime)',
    options: ['client'],
    positionals: ['CLIENT_ID'],
    optionalPositionals: true,
    run: ({ api, options, args }) => api.call('POST', `/admin/clients/${encodeURIComponent(clientOption('client revoke', options, args))}/revoke`),
  },
  {
    words: ['client', 'rotate-secret'],
    usage: '--client ID',
    summary: 'give an API client a new secret, printed this once; the old secret stops working at once',
    options: ['client'],
    required: ['client'],
    run: ({ api, options }) => api.call('POST', `/admin/clients/${encodeURIComponent(options.client as string)}/secret`),
  },
];

const path = (kind: string, id: string | undefined, rest = '') => `/admin/${kind}/${encodeURIComponent(id as string)}${rest}`;
const listQuery = (name: string, value: string | undefined) => (value ? `?${name}=${encodeURIComponent(value)}` : '');

// Organisations, teams and practitioners (issue 13). Body fields go to the server unchecked, so it refuses a
// bad or missing one in the same words as the other admin doors; only the id in the path is required here.
COMMANDS.push(
  {
    words: ['organization', 'create'],
    usage: '--customer ID --name NAME',
    summary: 'create an organisation of a customer (with its default team); prints its id and public id',
    options: ['customer', 'name'],
    run: ({ api, options }) => api.call('POST', '/admin/organizations', { customerId: options.customer, name: options.name }),
  },
  {
    words: ['organization', 'list'],
    usage: '[--customer ID]',
    summary: 'list organisations, all or one customer’s',
    options: ['customer'],
    run: ({ api, options }) => api.call('GET', `/admin/organizations${listQuery('customerId', options.customer)}`),
  },
  {
    words: ['organization', 'update'],
    usage: '--organization ID --name NAME',
    summary: 'rename an organisation',
    options: ['organization', 'name'],
    required: ['organization'],
    run: ({ api, options }) => api.call('PATCH', path('organizations', options.organization), { name: options.name }),
  },
  {
    words: ['organization', 'disable'],
    usage: '--organization ID',
    summary: 'disable an organisation for good: its clients get no tokens, and their tokens are refused from the next request on',
    options: ['organization'],
    required: ['organization'],
    run: ({ api, options }) => api.call('POST', path('organizations', options.organization, '/disable')),
  },
  {
    words: ['team', 'create'],
    usage: '--organization ID --name NAME [--alias ALIAS]',
    summary: 'create a team of an organisation',
    options: ['organization', 'name', 'alias'],
    run: ({ api, options }) => api.call('POST', '/admin/teams', { organizationId: options.organization, name: options.name, alias: options.alias }),
  },
  {
    words: ['team', 'list'],
    usage: '[--organization ID]',
    summary: 'list teams (with their practitioners), all or one organisation’s',
    options: ['organization'],
    run: ({ api, options }) => api.call('GET', `/admin/teams${listQuery('organizationId', options.organization)}`),
  },
  {
    words: ['team', 'update'],
    usage: '--team ID [--name NAME] [--alias ALIAS]',
    summary: "change a team's name or alias (--alias '' clears it)",
    options: ['team', 'name', 'alias'],
    required: ['team'],
    run: ({ api, options }) => api.call('PATCH', path('teams', options.team), { name: options.name, alias: clearable(options.alias) }),
  },
  {
    words: ['team', 'disable'],
    usage: '--team ID',
    summary: 'disable a team for good: clients bound to it get no tokens, and their tokens are refused from the next request on',
    options: ['team'],
    required: ['team'],
    run: ({ api, options }) => api.call('POST', path('teams', options.team, '/disable')),
  },
  {
    words: ['team', 'add-member'],
    usage: '--team ID --practitioner ID',
    summary: 'add a practitioner of the same organisation to a team',
    options: ['team', 'practitioner'],
    required: ['team'],
    run: ({ api, options }) => api.call('POST', path('teams', options.team, '/members'), { practitionerId: options.practitioner }),
  },
  {
    words: ['team', 'remove-member'],
    usage: '--team ID --practitioner ID',
    summary: 'remove a practitioner from a team',
    options: ['team', 'practitioner'],
    required: ['team', 'practitioner'],
    run: ({ api, options }) => api.call('DELETE', path('teams', options.team, `/members/${encodeURIComponent(options.practitioner as string)}`)),
  },
  {
    words: ['practitioner', 'create'],
    usage: '--organization ID --name NAME',
    summary: 'create a practitioner of an organisation',
    options: ['organization', 'name'],
    run: ({ api, options }) => api.call('POST', '/admin/practitioners', { organizationId: options.organization, name: options.name }),
  },
  {
    words: ['practitioner', 'list'],
    usage: '[--organization ID]',
    summary: 'list practitioners (with their teams), all or one organisation’s',
    options: ['organization'],
    run: ({ api, options }) => api.call('GET', `/admin/practitioners${listQuery('organizationId', options.organization)}`),
  },
  {
    words: ['practitioner', 'update'],
    usage: '--practitioner ID --name NAME',
    summary: 'rename a practitioner',
    options: ['practitioner', 'name'],
    required: ['practitioner'],
    run: ({ api, options }) => api.call('PATCH', path('practitioners', options.practitioner), { name: options.name }),
  },
  {
    words: ['practitioner', 'disable'],
    usage: '--practitioner ID',
    summary: 'disable a practitioner for good: clients bound to it get no tokens, and their tokens are refused from the next request on',
    options: ['practitioner'],
    required: ['practitioner'],
    run: ({ api, options }) => api.call('POST', path('practitioners', options.practitioner, '/disable')),
  },
);

const consent = (o: OptionValues) => ({ patientId: o.patient, grantee: o.grantee, label: o.label });
COMMANDS.push(
  {
    words: ['consent', 'grant'],
    usage: '--patient ID --grantee TEAM|PRACTITIONER --label LABEL',
    summary: "record a patient's consent: a privacy label granted to a team or a practitioner",
    options: ['patient', 'grantee', 'label'],
    required: ['patient', 'grantee', 'label'],
    run: ({ api, options }) => api.call('POST', '/admin/consents', consent(options)),
  },
  {
    words: ['consent', 'revoke'],
    usage: '--patient ID --grantee TEAM|PRACTITIONER --label LABEL',
    summary: 'revoke one granted label (the Consent turns inactive when none is left)',
    options: ['patient', 'grantee', 'label'],
    required: ['patient', 'grantee', 'label'],
    run: ({ api, options }) => api.call('DELETE', '/admin/consents', consent(options)),
  },
  {
    words: ['consent', 'list'],
    usage: '[--patient ID] [--grantee TEAM|PRACTITIONER]',
    summary: 'list consents, all, one patient’s or one grantee’s',
    options: ['patient', 'grantee'],
    run: ({ api, options }) => {
      const q = new URLSearchParams();
      if (options.patient) q.set('patientId', options.patient as string);
      if (options.grantee) q.set('grantee', options.grantee as string);
      return api.call('GET', `/admin/consents${q.size ? `?${q}` : ''}`);
    },
  },
  {
    words: ['consent', 'withdraw-all'],
    usage: '--patient ID',
    summary: "withdraw all of a patient's sharing at once (every consent inactive)",
    options: ['patient'],
    required: ['patient'],
    run: ({ api, options }) => api.call('POST', `/admin/patients/${encodeURIComponent(options.patient as string)}/withdraw-consents`),
  },
  {
    words: ['consent', 'access'],
    usage: '--patient ID [--frozen true|false]',
    summary: "show a patient's own access (frozen, break-the-glass events), or freeze/unfreeze it",
    options: ['patient', 'frozen'],
    required: ['patient'],
    run: ({ api, options }) =>
      options.frozen === undefined
        ? api.call('GET', `/admin/patients/${encodeURIComponent(options.patient as string)}/access`)
        : api.call('POST', `/admin/patients/${encodeURIComponent(options.patient as string)}/access`, { frozen: booleanOption(options.frozen) }),
  },
  {
    words: ['aggregation', 'status'],
    usage: '',
    summary: 'aggregation lag: queue depth, oldest item age, parked items',
    options: [],
    run: ({ api }) => api.call('GET', '/admin/aggregation'),
  },
  {
    words: ['aggregation', 'report'],
    usage: '--endpoint ID [--format text|json]',
    summary: "an endpoint's aggregation report: included and excluded per type and rule, and the root causes of exclusions",
    options: ['endpoint', 'format'],
    required: ['endpoint'],
    run: async ({ api, options }) => {
      if (options.format !== undefined && !['text', 'json'].includes(options.format)) throw usageError("--format must be 'text' or 'json'");
      return api.call('GET', `/admin/endpoints/${encodeURIComponent(options.endpoint as string)}/aggregation-report`);
    },
    text: (report) => formatReport(report as AggregationReport),
  },
  {
    words: ['aggregation', 'wait'],
    usage: '[--timeout-ms N]',
    summary: 'wait until the aggregated view has caught up with every write so far',
    options: ['timeout-ms'],
    run: ({ api, options }) => api.call('POST', `/admin/aggregation/wait?timeoutMs=${encodeURIComponent(options['timeout-ms'] ?? '30000')}`),
  },
);

COMMANDS.push({
  words: ['import'],
  usage: '--endpoint ID [--concurrency N] FILE_OR_DIR…',
  summary: 'load FHIR Bundles (transaction, batch, collection) and NDJSON files into an endpoint through its FHIR API',
  options: ['endpoint', 'concurrency'],
  required: ['endpoint'],
  positionals: ['FILE_OR_DIR'],
  variadic: true,
  run: ({ api, options, args, progress }) => runImport(api, { endpoint: options.endpoint as string, concurrency: options.concurrency, paths: args, progress }),
});

COMMANDS.push({
  words: ['import-native'],
  usage: '--organization ID FILE',
  summary: "load timeline entries (CSV or NDJSON; columns in the README) into an organisation's native record",
  options: ['organization'],
  required: ['organization'],
  positionals: ['FILE'],
  run: ({ api, options, args, progress }) => runImportNative(api, { organization: options.organization as string, file: args[0], progress }),
});

export function checkCommandInput(command: AdminCommand, options: OptionValues, args: string[]): void {
  const name = command.words.join(' ');
  for (const key of Object.keys(options)) {
    if (!command.options.includes(key)) throw usageError(`'${name}' does not take --${key}`);
  }
  for (const key of command.required ?? []) {
    if (!options[key]) throw usageError(`'${name}' needs --${key}`);
  }
  const expected = command.positionals ?? [];
  const count = command.variadic ? args.length >= expected.length : command.optionalPositionals ? args.length <= expected.length : args.length === expected.length;
  if (!count) {
    throw usageError(expected.length ? `'${name}' needs ${expected.join(' ')}` : `'${name}' takes no argument '${args[0]}'`);
  }
}
