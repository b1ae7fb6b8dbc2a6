import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { ADMIN_CREDENTIAL_FILE, type AdminCredentialFile } from '../access/adminCredential';
import { CliError } from './cliError';

/**
 * Where the admin API is and which token to present. The URL: `--url`, else $TRIBUTARY_URL, else
 * http://localhost:$PORT when PORT is set, else the URL the server wrote into its credential file, else
 * http://localhost:4000. The token: `--token`, else $ADMIN_TOKEN, else the credential file the server
 * created in its data folder ($DATA_DIR, default ./data).
 */
export interface AdminConnection {
  url: string;
  token: string;
}

export interface ConnectionInputs {
  url?: string;
  token?: string;
  env: NodeJS.ProcessEnv;
  /** Resolves a relative DATA_DIR; defaults to the process's working directory. */
  cwd?: string;
}

export async function resolveAdminConnection(inputs: ConnectionInputs): Promise<AdminConnection> {
  const { env } = inputs;
  const file = path.resolve(inputs.cwd ?? process.cwd(), env.DATA_DIR || './data', ADMIN_CREDENTIAL_FILE);
  let stored: AdminCredentialFile | undefined | null = null; // null: not read yet
  const credentialFile = async () => {
    if (stored === null) stored = await readCredentialFile(file);
    return stored;
  };

  let url = inputs.url || env.TRIBUTARY_URL || (env.PORT ? `http://localhost:${env.PORT}` : undefined);
  url ??= (await credentialFile())?.url || 'http://localhost:4000';

  const token = inputs.token || env.ADMIN_TOKEN || (await credentialFile())?.token;
  if (!token) {
    throw new CliError(`No admin token: pass --token, set ADMIN_TOKEN, or run where the server's ${file} is readable (the server creates it at first start)`);
  }
  return { url: url.replace(/\/+$/, ''), token };
}

async function readCredentialFile(file: string): Promise<AdminCredentialFile | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    throw new CliError(`Cannot read ${file}: ${(err as Error).message}`);
  }
  try {
    return JSON.parse(text) as AdminCredentialFile;
  } catch {
    throw new CliError(`${file} is not valid JSON`);
  }
}
