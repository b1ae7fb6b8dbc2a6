import { chmod, mkdir, stat } from 'node:fs/promises';

/**
 * Makes sure the data folder exists before anything is stored in it, readable by the owner only (0700): it
 * holds the embedded database, the signing keys and the admin credential. A first start with a DATA_DIR that
 * does not exist yet creates it (and its parents); an existing folder open to others is tightened, as the
 * key files are.
 */
export async function ensureDataDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  if (process.platform === 'win32') return;
  const { mode } = await stat(dir);
  // A folder we do not own (EPERM) keeps its mode: the files inside are owner-only in any case.
  if ((mode & 0o077) !== 0)
    await chmod(dir, mode & 0o700).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPERM') throw err;
    });
}
