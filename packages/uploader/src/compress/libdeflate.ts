import { createRequire } from 'node:module';

/** The libdeflate binding (packages/uploader/native/deflate.c, built by native/build.mjs). */
export interface Libdeflate {
  /** One gzip member of `input`, deflated at `level` (1–12) on libuv's thread pool; `input` must not change meanwhile. */
  gzip(input: Buffer, level: number): Promise<Buffer>;
  /** The CRC-32 of `input`, continuing from `crc` (0 to start), as zlib.crc32 computes it, about twice as fast. */
  crc32(input: Buffer, crc: number): number;
}

/**
 * Where the binding is, relative to this module: beside it in the CLI's bundle (tools/bundle-cli.mjs copies
 * it there), in native/build from dist/compress in the package.
 */
const CANDIDATES = ['./rxpush-deflate.node', '../../native/build/rxpush-deflate.node'];

let loaded: Libdeflate | null | undefined;

/**
 * The binding, loaded on first use, or undefined where it was not built or does not load (no C compiler or
 * libdeflate where the package was set up): gzipLayer then deflates with zlib.
 */
export function libdeflate(): Libdeflate | undefined {
  if (loaded === undefined) loaded = load();
  return loaded ?? undefined;
}

function load(): Libdeflate | null {
  const require = createRequire(import.meta.url);
  for (const candidate of CANDIDATES) {
    try {
      return require(candidate) as Libdeflate;
    } catch {
      // Not there, or there but not loadable here (another CPU, libdeflate's library missing): the next, then zlib.
    }
  }
  return null;
}
