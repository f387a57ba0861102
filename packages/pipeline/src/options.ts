import type { Logger, PushFormat } from '@rxpush/core';
import type { SigningKey } from '@rxpush/manifest-signer';
import type { Authenticator, CreateRegistryClientOptions, RetryOptions } from '@rxpush/registry-client';
import type { UploadLimiter } from '@rxpush/uploader';

/**
 * How to reach the registry of a `docker://` source: the same choices as for the destination, given apart
 * (`--src-creds`, `--src-authfile`, `--src-tls-verify`, `--src-ca-file`, `--src-plain-http`), so that each
 * registry's credentials go to it only. Docker's config.json is read per registry for both.
 */
export interface SourceRegistryOptions {
  readonly credentials?: { readonly username: string; readonly password: string; readonly source?: string };
  readonly authfile?: string;
  readonly tlsVerify?: boolean;
  readonly caFile?: string;
  readonly certDir?: string;
  readonly plainHttp?: boolean;
  /** The undici dispatcher for the source registry's requests (MockAgent in tests); replaces the TLS options. */
  readonly dispatcher?: NonNullable<CreateRegistryClientOptions['dispatcher']>;
  readonly auth?: Authenticator;
}

/** Options of `push()`: where from, where to, and how. */
export interface PushOptions {
  /** The source, in skopeo's transport syntax: `oci:PATH[:REF]`, `docker-archive:PATH`, … */
  readonly source: string;
  /** `[docker://]REGISTRY/REPO[:TAG]`. Without a tag: the source's tag, else `latest`. */
  readonly destination: string;
  /** For a `docker://` source: how to reach its registry (default: as for any registry, config.json and anonymous). */
  readonly sourceRegistry?: SourceRegistryOptions;
  /** Of a multi-platform index (a `docker://`, `oci:` or `oci-archive:` source): push only this platform's image (`os/arch[/variant]`); default the whole index. A source naming one image of another platform is refused. */
  readonly platform?: string;
  /** More tags to push the same image as (`--tag`, repeatable). */
  readonly tags?: readonly string[];
  /** Push every tag (ref name) the source has, each under its own name. */
  readonly allTags?: boolean;
  /** Rewrite manifests to this format; default: keep the source's format. `schema1` needs `signKey`. */
  readonly format?: PushFormat;
  /**
   * Sign what is pushed (`--sign-key`; load it with `loadSigningKey`): a schema 1 manifest as its JWS, any
   * other manifest with a cosign signature under `sha256-<hex>.sig`, pushed after the manifest.
   */
  readonly signKey?: SigningKey;
  /** With `signKey`: sign every image of an index too, not only the index (`--sign-children`). */
  readonly signChildren?: boolean;
  /**
   * Check everything, write nothing (`--dry-run`): blobs are HEADed (mount sources too) but never uploaded or
   * mounted, no manifest is PUT and the digest cache is not written. See `push()` for what it emits then.
   */
  readonly dryRun?: boolean;
  /** Blobs sent at once (default 4; a blob waiting for the registry's answer to its commit holds no slot: see uploadBlobs). */
  readonly concurrency?: number;
  /**
   * The upload limit this push shares with others in the process (default the uploader's
   * `sharedUploadLimiter`: 8 uploads at once for all pushes together, so many pushes at once keep memory flat).
   */
  readonly uploadLimiter?: UploadLimiter;
  /**
   * Keep chunked uploads in the cache directory so that a push broken off (crash, kill, Ctrl-C, a lost network)
   * resumes them in the next run, sending only what the registry lacks (default true; `--no-resume`: false, and
   * a cancelled push gives its sessions back). Layers of 256 MiB or more go up in 64 MiB chunks for it.
   */
  readonly resume?: boolean;
  /**
   * Told, once the push is over (done, failed or cancelled), how many chunked uploads it left open in the cache
   * directory for the next run to resume: the CLI says so when Ctrl-C keeps some.
   */
  readonly onSessionsKept?: (count: number) => void;
  /** Upload in PATCH chunks of this many bytes instead of one monolithic PUT. */
  readonly chunkSize?: number;
  /** How to compress uncompressed layers (docker-archive, docker-root): default gzip. */
  readonly compression?: 'gzip' | 'zstd' | 'none';
  /** The gzip level of compressed layers, 0–9 (default 1, and 4 for blocks that look like text: the fastest within 5 % of skopeo's size on real files; with zlib, where libdeflate is not built, 3 and 4). */
  readonly compressionLevel?: number;
  /** Use plain HTTP for the destination registry. */
  readonly plainHttp?: boolean;
  /** Docker's data root, for `docker-root:` sources (default /var/lib/docker). */
  readonly dataRoot?: string;
  /** For `docker-root:`: the storage driver whose images to read, when the data root has images of several. */
  readonly storageDriver?: string;
  /** The undici dispatcher for registry requests (proxies, MockAgent in tests); replaces the TLS options below. */
  readonly dispatcher?: NonNullable<CreateRegistryClientOptions['dispatcher']>;
  /**
   * Credentials for the destination registry (`--creds`, `--username` + `--password-stdin`); `source` names
   * them in messages. Without them: `authfile`, then Docker's config.json and credential helpers, then anonymous.
   */
  readonly credentials?: { readonly username: string; readonly password: string; readonly source?: string };
  /** A config.json-format credentials file to look in before Docker's (`--authfile`). */
  readonly authfile?: string;
  /** The directory of Docker's config.json (default `$DOCKER_CONFIG`, else `~/.docker`). */
  readonly dockerConfigDir?: string;
  /** An authenticator of your own, instead of rxpush's token/Basic auth with the credentials above. */
  readonly auth?: Authenticator;
  /** Verify the registry's TLS certificate (default true). `false` (`--tls-verify=false`) logs a warning. */
  readonly tlsVerify?: boolean;
  /** A PEM file of more CAs to trust besides the system's (`--ca-file`). */
  readonly caFile?: string;
  /** A directory of `*.crt` CAs and `NAME.cert`/`NAME.key` client certificates for the registry (`--cert-dir`). */
  readonly certDir?: string;
  /** Docker's certs.d root, searched for `HOST:PORT/` when `certDir` is not given (default `/etc/docker/certs.d`). */
  readonly certsRoot?: string;
  readonly logger?: Logger;
  /**
   * The digest cache directory (default `$RXPUSH_CACHE_DIR`, `$XDG_CACHE_HOME/rxpush` or `~/.cache/rxpush`);
   * `false` pushes without reading or writing it.
   */
  readonly cacheDir?: string | false;
  /** How failed requests and broken uploads are retried (default: for 60 s from the first failure, backoff from 1 s with full jitter up to 30 s, Retry-After capped at 60 s; a blob's upload and the requests inside it share one budget). */
  readonly retry?: RetryOptions;
  /** Registry timeouts in ms: connecting (default 10 000), waiting for an answer's headers (25 000), between body chunks (25 000). A request that times out is tried once more, so a registry that accepts connections and never answers fails within a minute. */
  readonly timeouts?: {
    readonly connect?: number;
    readonly headers?: number;
    readonly body?: number;
    /** How long a Docker Engine (`docker-daemon:`) may send nothing in the middle of its save stream (default 30 000). */
    readonly engine?: number;
  };
}
