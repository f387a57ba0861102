/**
 * skopeo as an independent reader of what rxpush pushed. Every helper throws with
 * skopeo's own stderr when it fails. References are `docker://` refs without the
 * prefix (`127.0.0.1:5000/repo:tag`) or any skopeo transport (`oci:DIR:tag`).
 */
import { execFile } from 'node:child_process';

const SKOPEO = '/usr/bin/skopeo';

export interface SkopeoOptions {
  /** Verify TLS (default false: test registries use throwaway certificates or plain HTTP). */
  tlsVerify?: boolean;
  /** `USER:PASSWORD` for the registry. */
  creds?: string;
  /** A directory of CA certificates (`*.crt`) to trust. */
  certDir?: string;
}

/** `docker://` is assumed unless the reference names a transport. */
function transportRef(ref: string): string {
  return /^(docker|oci|oci-archive|docker-archive|docker-daemon|dir|containers-storage):/.test(ref) ? ref : `docker://${ref}`;
}

function isRegistryRef(ref: string): boolean {
  return transportRef(ref).startsWith('docker://');
}

function registryFlags(prefix: '' | 'src-' | 'dest-', opts: SkopeoOptions): string[] {
  const flags = [`--${prefix}tls-verify=${opts.tlsVerify ?? false}`];
  if (opts.creds) flags.push(`--${prefix}creds=${opts.creds}`);
  if (opts.certDir) flags.push(`--${prefix}cert-dir=${opts.certDir}`);
  return flags;
}

/** Runs skopeo and returns its stdout as bytes; rejects with its stderr. */
export function runSkopeo(args: string[]): Promise<Buffer> {
  return new Promise((ok, fail) => {
    execFile(SKOPEO, args, { encoding: 'buffer', maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) {
        const why = stderr.toString('utf8').trim() || err.message;
        fail(new Error(`skopeo ${args.join(' ')} failed: ${why}`));
      } else {
        ok(stdout);
      }
    });
  });
}

/** The manifest exactly as stored (`skopeo inspect --raw`), bytes and parsed. */
export async function skopeoInspectRaw(ref: string, opts: SkopeoOptions = {}): Promise<{ bytes: Buffer; json: any }> {
  const flags = isRegistryRef(ref) ? registryFlags('', opts) : [];
  const bytes = await runSkopeo(['inspect', '--raw', ...flags, transportRef(ref)]);
  return { bytes, json: JSON.parse(bytes.toString('utf8')) };
}

/** The config blob as stored (`skopeo inspect --config --raw`). */
export async function skopeoInspectConfig(ref: string, opts: SkopeoOptions = {}): Promise<any> {
  const flags = isRegistryRef(ref) ? registryFlags('', opts) : [];
  const bytes = await runSkopeo(['inspect', '--config', '--raw', ...flags, transportRef(ref)]);
  return JSON.parse(bytes.toString('utf8'));
}

/** skopeo's summary (`Digest`, `Layers`, `Architecture`, …). */
export async function skopeoInspect(ref: string, opts: SkopeoOptions = {}): Promise<any> {
  const flags = isRegistryRef(ref) ? registryFlags('', opts) : [];
  const bytes = await runSkopeo(['inspect', ...flags, transportRef(ref)]);
  return JSON.parse(bytes.toString('utf8'));
}

/**
 * Copies an image into an OCI layout (`dir`, tag `tag`), pulling and checking
 * every blob: the strongest proof that what was pushed is whole.
 */
export async function skopeoCopyToOci(ref: string, dir: string, opts: SkopeoOptions & { tag?: string } = {}): Promise<void> {
  const flags = isRegistryRef(ref) ? registryFlags('src-', opts) : [];
  await runSkopeo(['copy', '--quiet', ...flags, transportRef(ref), `oci:${dir}:${opts.tag ?? 'latest'}`]);
}

/** Copies any skopeo source (e.g. `oci:DIR:latest`) into a registry, preserving digests. */
export async function skopeoCopy(
  src: string,
  dest: string,
  opts: SkopeoOptions & { format?: 'oci' | 'v2s2' | 'v2s1'; /** `dir:` destinations: skopeo gunzips the layers itself. */ decompress?: boolean } = {},
): Promise<void> {
  const srcFlags = isRegistryRef(src) ? registryFlags('src-', opts) : [];
  const destFlags = isRegistryRef(dest) ? registryFlags('dest-', opts) : [];
  const format = opts.format ? [`--format=${opts.format}`] : [];
  const decompress = opts.decompress ? ['--dest-decompress'] : [];
  await runSkopeo(['copy', '--quiet', ...format, ...decompress, ...srcFlags, ...destFlags, transportRef(src), transportRef(dest)]);
}
