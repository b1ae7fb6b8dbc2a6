import { randomBytes } from 'node:crypto';
import { chmod, link, mkdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';

/**
 * Reads a JSON file of secrets, creating it first if absent, readable and writable by the owner only (0600).
 * Creation is atomic (write a private temp file, then hard-link it into place, which fails if another
 * process got there first), so two processes starting together agree on one value and nobody ever reads
 * a half-written file. A pre-existing file with looser permissions is tightened.
 */
export async function readOrCreateOwnerOnlyJson<T>(file: string, create: () => T): Promise<{ value: T; created: boolean }> {
  await mkdir(path.dirname(file), { recursive: true });
  const existing = await readIfPresent<T>(file);
  if (existing !== undefined) return { value: existing, created: false };
  const value = create();
  const temp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(temp, `${JSON.stringify(value, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
  try {
    await link(temp, file);
    return { value, created: true };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    const winner = await readIfPresent<T>(file);
    if (winner === undefined) throw err;
    return { value: winner, created: false };
  } finally {
    await unlink(temp).catch(() => undefined);
  }
}

/** Replaces the file's content, keeping it owner-only. */
export async function writeOwnerOnlyJson(file: string, value: unknown): Promise<void> {
  const temp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(temp, `${JSON.stringify(value, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
  await rename(temp, file);
}

async function readIfPresent<T>(file: string): Promise<T | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  if (process.platform !== 'win32' && ((await stat(file)).mode & 0o077) !== 0) await chmod(file, 0o600);
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new Error(`${file} is not valid JSON; fix or remove it (a new one is created at start when absent)`);
  }
}
