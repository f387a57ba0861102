import { chmod, open, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';

import { fileReason, KeyError, UsageError } from '@rxpush/core';
import { generateSigningKey } from '@rxpush/manifest-signer';

import { helpFor, type RawArgs } from './parse-args.js';
import { last } from './push-command.js';
import type { TextSink } from './progress/renderer.js';
import { fail } from './fail.js';
import { readPassword } from './read-password.js';

/**
 * The `rxpush keygen` handler: writes a new ECDSA P-256 key as PKCS#8 PEM to `--out FILE` (mode 0600) and its
 * public key to `FILE.pub`, never over existing files unless `--force`. The key is encrypted with the passphrase
 * from stdin (`--key-password-stdin`), else RXPUSH_KEY_PASSWORD when set: the same passphrase push and verify
 * read it with. Exit 0 written, 1 failed, 2 usage.
 *
 * @example process.exitCode = await runKeygen({ out: './rxpush.key' }, { stdout, stderr })
 */
export async function runKeygen(args: RawArgs, io: { stdout: TextSink; stderr: TextSink; stdin?: Readable }): Promise<number> {
  try {
    const out = last(args['out']);
    if (out === undefined || out === '') throw new UsageError('keygen needs --out FILE, the private key file to write');
    const force = args['force'] === true;
    const fromEnv = process.env['RXPUSH_KEY_PASSWORD'];
    const password = args['key-password-stdin'] === true ? await readPassword(io.stdin ?? process.stdin, '--key-password-stdin') : fromEnv !== '' ? fromEnv : undefined;
    const key = generateSigningKey(password === undefined ? {} : { password });
    const privateFile = await openNew(out, 0o600, force);
    let publicFile;
    try {
      publicFile = await openNew(`${out}.pub`, 0o644, force);
    } catch (error) {
      // No lone (empty) private key is left behind when FILE.pub is refused.
      await privateFile.close();
      if (!force) await rm(out, { force: true });
      throw error;
    }
    try {
      await privateFile.writeFile(key.privatePem);
      await publicFile.writeFile(key.publicPem);
      // --force over an existing file keeps that file's mode; a private key must not stay readable by others.
      await chmod(out, 0o600);
    } finally {
      await Promise.all([privateFile.close(), publicFile.close()]);
    }
    const kind = password === undefined ? 'private key: keep it secret' : 'private key, encrypted with the passphrase';
    io.stdout.write(`wrote ${out} (${kind}) and ${out}.pub; key ID ${key.keyId}\n`);
    return 0;
  } catch (error) {
    return fail(error, io.stderr, 'warn', helpFor('keygen'));
  }
}

async function openNew(path: string, mode: number, force: boolean) {
  try {
    return await open(path, force ? 'w' : 'wx', mode);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    // A directory "exists" too (open says EEXIST before EISDIR); --force could not help there.
    const directory = code === 'EISDIR' || (code === 'EEXIST' && (await stat(path).then((s) => s.isDirectory(), () => false)));
    if (directory) throw new KeyError(path, `cannot write ${path}: it is a directory; --out names the private key file to write, e.g. ${join(path, 'rxpush.key')}`, { cause: error });
    if (code === 'EEXIST') throw new KeyError(path, `${path} already exists; rxpush keygen never overwrites a key: choose another --out, or pass --force`);
    throw new KeyError(path, `cannot write ${path}: ${fileReason(error, 'new file')}`, { cause: error });
  }
}
