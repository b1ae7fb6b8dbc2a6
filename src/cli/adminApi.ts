import type { AdminConnection } from './adminConnection';
import { CliError } from './cliError';

/** The admin CLI's HTTP client: JSON in and out, an OperationOutcome's diagnostics turned into a CliError. */
export type Fetch = typeof fetch;

export class AdminApi {
  constructor(
    private readonly connection: AdminConnection,
    private readonly fetchFn: Fetch = fetch,
  ) {}

  get url(): string {
    return this.connection.url;
  }

  async call(method: 'GET' | 'POST' | 'PATCH' | 'DELETE', path: string, body?: unknown): Promise<unknown> {
    const target = `${this.connection.url}${path}`;
    let response: Response;
    try {
      response = await this.fetchFn(target, {
        method,
        headers: {
          authorization: `Bearer ${this.connection.token}`,
          accept: 'application/json',
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      const why = cause?.code ?? cause?.message ?? (err as Error).message;
      throw new CliError(`Cannot reach the server at ${this.connection.url} (${why}). Is it running? Point to it with --url or TRIBUTARY_URL.`);
    }
    const text = await response.text();
    let parsed: unknown;
    try {
      parsed = text === '' ? undefined : JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    if (!response.ok) throw new CliError(`${method} ${path} failed with ${response.status}: ${describe(parsed) ?? (text.slice(0, 200) || response.statusText)}`);
    if (parsed === undefined) throw new CliError(`${method} ${path} answered ${response.status} without a JSON body`);
    return parsed;
  }
}

function describe(body: unknown): string | undefined {
  const issues = (body as { resourceType?: string; issue?: { diagnostics?: string; code?: string; expression?: string[] }[] } | undefined)?.issue;
  if (!Array.isArray(issues) || issues.length === 0) return undefined;
  return issues.map((i) => `${i.diagnostics ?? i.code}${i.expression?.length ? ` (${i.expression.join(', ')})` : ''}`).join('; ');
}
