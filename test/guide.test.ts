/**
 * docs/guide.md's troubleshooting quotes rxpush's real messages: this test makes each failure happen (against
 * the reference registry, plain and TLS + htpasswd) and finds the line the CLI printed in the guide, with
 * hosts, ports and digests written as the guide abbreviates them.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

import { packTar } from '../packages/graph-reader/test/docker-save-fixtures.ts';
import { makeOciLayout } from '../tools/fixtures.ts';
import { startRegistry, type RunningRegistry } from '../tools/registry.ts';
import { homeIn, runCli } from './helpers/run-cli.ts';

const guidePath = join(dirname(fileURLToPath(import.meta.url)), '..', 'docs', 'guide.md');

/** Hosts, ports and digests as placeholders, so a message from this run compares with the guide's. */
function normalized(text: string): string {
  return text
    .replace(/(?:127\.0\.0\.1|localhost):\d+/g, 'HOST')
    .replace(/sha256([:-])(?:[0-9a-f]{64}|[0-9a-f]{4}…[0-9a-f]{4})/g, 'sha256$1…');
}

describe('the troubleshooting section of docs/guide.md', () => {
  let plain: RunningRegistry;
  let tls: RunningRegistry;
  let readOnly: RunningRegistry;
  let work: string;
  let guide: string;
  let env: Record<string, string>;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'rxpush-guide-'));
    env = homeIn(work);
    [plain, tls, readOnly] = await Promise.all([startRegistry(), startRegistry({ tls: true, htpasswd: { bob: 's3cret' } }), startRegistry({ readOnly: true })]);
    await makeOciLayout(join(work, 'image'), { images: [{ tags: ['latest'], layers: [{ files: 1, fileSize: 1_000, seed: 'guide' }] }] });
    guide = normalized(await readFile(guidePath, 'utf8'));
  });
  after(async () => {
    await Promise.all([plain?.stop(), tls?.stop(), readOnly?.stop()]);
    await rm(work, { recursive: true, force: true });
  });

  /** Runs rxpush in the work directory and checks that the guide quotes its error line. */
  async function quoted(args: string[], code = 1, extraEnv: Record<string, string> = {}): Promise<void> {
    const result = await runCli(args, { cwd: work, env: { ...env, ...extraEnv } });
    assert.equal(result.code, code, result.stderr);
    const line = normalized(result.stderr.trimEnd());
    assert.ok(guide.includes(line), `docs/guide.md quotes\n  ${line}`);
  }

  it('quotes the registry and TLS failures', async () => {
    await quoted(['push', 'oci:./image:latest', '127.0.0.1:1/app:1.0', '-q']);
    await quoted(['push', 'oci:./image:latest', `${tls.host}/guide/app:1.0`, '-q']);
    await quoted(['push', 'oci:./image:latest', `${tls.host}/guide/app:1.0`, '--ca-file', tls.caFile ?? '', '-q']);
    await quoted(['push', 'oci:./image:latest', `${tls.host}/guide/app:1.0`, '--ca-file', tls.caFile ?? '', '--creds', 'bob:wrong', '-q']);
    await quoted(['push', 'oci:./image:latest', `${readOnly.host}/guide/app:1.0`, '-q']);
  });

  it('quotes the source and destination failures', async () => {
    await quoted(['push', 'oci:./nope:latest', `${plain.host}/guide/app:1.0`, '-q']);
    await quoted(['push', 'oci:./image:v9', `${plain.host}/guide/app:1.0`, '-q']);
    await quoted(['push', 'docker-archive:./missing.tar', `${plain.host}/guide/app`, '-q']);
    await quoted(['push', 'oci:./image:latest', `${plain.host}/Guide/App`, '-q']);
    // A gzip stream cut short, a tar that holds no image, and nowhere to copy a compressed archive to.
    await writeFile(join(work, 'app.tar.gz'), gzipSync(await packTar([{ name: 'layer.tar', data: 'x'.repeat(100_000) }])).subarray(0, 200));
    await quoted(['push', 'docker-archive:./app.tar.gz', `${plain.host}/guide/app`, '-q']);
    await writeFile(join(work, 'notes.tar'), await packTar([{ name: 'notes.txt', data: 'no image here' }]));
    await quoted(['push', 'docker-archive:./notes.tar', `${plain.host}/guide/app`, '-q']);
    await quoted(['push', 'docker-archive:./app.tar.gz', `${plain.host}/guide/app`, '-q'], 1, { TMPDIR: '/nonexistent' });
    await quoted(['push', 'oci:./image:latest', `${plain.host}/guide/app@sha256:${'0'.repeat(64)}`, '-q'], 2);
  });

  it('quotes the usage errors', async () => {
    await quoted(['push', 'oci:./image:latest', `${plain.host}/guide/app`, '--format', 'v2'], 2);
    await quoted(['push', 'oci:./image:latest', '--concurrency', '0', `${plain.host}/a`], 2);
    await quoted(['push', 'oci:./image:latest', `${plain.host}/a`, '--timeout', '30'], 2);
    await quoted(['push', 'oci:./image:latest', `${plain.host}/a`, '--concurency', '2'], 2);
    await quoted(['push', 'oci:./image:latest', `${plain.host}/a`, '--dest-tls-verify=false'], 2);
  });

  it('quotes the signing failures', async () => {
    const { generateKeyPairSync } = await import('node:crypto');
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    await writeFile(join(work, 'rxpush.key'), ec.export({ format: 'pem', type: 'pkcs8', cipher: 'aes-256-cbc', passphrase: 'pw' }));
    await writeFile(join(work, 'dsa.pem'), generateKeyPairSync('dsa', { modulusLength: 2048, divisorLength: 256 }).privateKey.export({ format: 'pem', type: 'pkcs8' }));
    await quoted(['push', 'oci:./image:latest', `${plain.host}/guide/app:1.0`, '--sign-key', './rxpush.key', '-q']);
    await quoted(['push', 'oci:./image:latest', `${plain.host}/guide/app:1.0`, '--sign-key', './dsa.pem', '-q']);
    assert.equal((await runCli(['push', 'oci:./image:latest', `${plain.host}/guide/app:1.0`, '-q'], { cwd: work, env })).code, 0);
    await writeFile(join(work, 'k.pub'), ec.export({ format: 'pem', type: 'pkcs8' }));
    await quoted(['verify', `${plain.host}/guide/app:1.0`, '--key', './k.pub']);
  });
});
