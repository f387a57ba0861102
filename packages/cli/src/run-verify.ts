import type { Readable } from 'node:stream';

import { assertNamesRepository, isDigest, parseReference, UsageError } from '@rxpush/core';
import { loadVerifyKey, verifyImage } from '@rxpush/manifest-signer';
import { createRegistryClient } from '@rxpush/registry-client';

import { helpFor, type RawArgs } from './parse-args.js';
import type { TextSink } from './progress/renderer.js';
import { last, oneOf, registryCommand } from './push-command.js';
import { fail } from './fail.js';
import { clientOptions, commandCredentials, commandLogger } from './run-push.js';

/**
 * The `rxpush verify` handler: checks that DEST is signed by `--key` (a cosign signature or a schema 1 JWS
 * covering exactly its digest and repository). Exit 0 verified, 1 not (one line naming which check failed),
 * 2 usage. `--output json` prints what was verified.
 *
 * @example process.exitCode = await runVerify({ DEST: 'localhost:5000/app:1.0', key: 'k.pub' }, { stdout, stderr })
 */
export async function runVerify(args: RawArgs, io: { stdout: TextSink; stderr: TextSink; stdin?: Readable; signal?: AbortSignal }): Promise<number> {
  let logLevel: ReturnType<typeof registryCommand>['logLevel'] = 'warn';
  try {
    const dest = last(args['DEST']);
    const keyPath = last(args['key']);
    if (dest === undefined) throw new UsageError('missing DEST');
    if (keyPath === undefined || keyPath === '') throw new UsageError('verify needs --key FILE, the public key to check the signature with');
    const output = oneOf('output', last(args['output']), ['text', 'json'] as const) ?? 'text';
    const command = registryCommand(args);
    logLevel = command.logLevel;
    assertNamesRepository(dest, 'reference');
    const reference = parseReference(dest);
    const key = await loadVerifyKey(keyPath, process.env['RXPUSH_KEY_PASSWORD'] === undefined ? {} : { password: process.env['RXPUSH_KEY_PASSWORD'] });
    const credentials = await commandCredentials(command.credentials, io.stdin ?? process.stdin);
    const logger = commandLogger(command.logLevel, command.logFormat, io.stderr);
    const client = createRegistryClient({ registry: reference.registry, logger, ...clientOptions(command, credentials) });
    try {
      const result = await verifyImage({
        client,
        repository: reference.repository,
        reference: reference.digest ?? reference.tag ?? 'latest',
        key,
        logger,
        ...(io.signal !== undefined && { signal: io.signal }),
      });
      if (output === 'json') {
        io.stdout.write(`${JSON.stringify(result)}\n`);
      } else {
        const named = `${result.registry}/${result.repository}${isDigest(result.reference) ? '' : `:${result.reference}`}`;
        for (const signature of result.signatures) {
          io.stdout.write(`${named}: ${result.digest} is signed by ${signature.keyId} (${signature.scheme === 'cosign' ? `cosign, ${signature.signatureTag}` : 'schema 1 JWS'})\n`);
        }
      }
      return 0;
    } finally {
      await client.close();
    }
  } catch (error) {
    return fail(error, io.stderr, logLevel, helpFor('verify'));
  }
}
