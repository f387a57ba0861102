import { createHash } from 'node:crypto';
import { PassThrough, Readable } from 'node:stream';

import type { Digest, Logger, OpenOptions } from '@rxpush/core';
import { CancelledError, DigestMismatchError, InvalidSourceError, UnsupportedError, isPushError, shortId } from '@rxpush/core';
import tar, { type ExtractEvents } from 'tar-stream';

import { parseV1LayerJson, v1LayerIndex } from '../docker-archive/save-v1.js';
import { chainIds } from '../shared/chain-ids.js';
import { MAX_DOCUMENT_SIZE } from '../oci/layout-files.js';

/** Options of {@link SaveStreamReader}. */
export interface SaveStreamOptions {
  /** The source as the user named it, for messages. */
  readonly source: string;
  /** The image ID: the config's digest. */
  readonly imageId: Digest;
  /** The layers' diff IDs, base first (as the engine's API lists them). */
  readonly diffIds: readonly Digest[];
  /**
   * Starts the `docker save` stream; `close` is called once it is no longer read. `again` is true for a stream
   * started to read one blob a second time (its upload broke): the engine's image must still be the one read.
   */
  readonly start: (signal: AbortSignal, again: boolean) => Promise<{ stream: Readable; close(): Promise<void> }>;
  /** How long the stream may wait for a layer to be opened while nothing happens (default 30 s). */
  readonly stallTimeoutMs?: number;
  /** How long the engine may send nothing while rxpush waits for its next bytes (default 30 s). */
  readonly idleTimeoutMs?: number;
  /**
   * After how long without the save stream's first answer rxpush says it is still waiting (default 60 s).
   * It is no timeout: the engine writes the whole image out before it answers, which takes minutes for big images.
   */
  readonly slowStartNoticeMs?: number;
  /** The engine as messages name it (`the Docker Engine at unix:///var/run/docker.sock`). */
  readonly engine?: string;
  /** What else the user can do when the stream cannot be served (e.g. save the image and push the archive). */
  readonly alternative: string;
  readonly logger: Logger;
}

type SlotState = 'pending' | 'opened' | 'streaming' | 'done' | 'released';

/** One blob of the image and who, if anyone, is reading it. */
interface Slot {
  readonly key: Digest;
  readonly role: 'layer' | 'config';
  /** `layer 3 of 7 (abc123…)` or `config`. */
  readonly what: string;
  state: SlotState;
  consumer?: PassThrough;
  /** Hands the consumer to its opener once the stream reaches the blob, with the size its tar header gives. */
  reached?: (size: number | undefined) => void;
  /** The config once it passed by (it is small, and checked against its digest): kept for a second read. */
  bytes?: Buffer;
}

/** A member of the tar stream as tar-stream hands it over (a streamx readable). */
type Entry = ExtractEvents['entry'][1];

const ONE_MIB = 1024 * 1024;
const DEFAULT_STALL_TIMEOUT_MS = 30_000;
const DEFAULT_IDLE_TIMEOUT_MS = 30_000;
const DEFAULT_SLOW_START_NOTICE_MS = 60_000;

/**
 * Serves the blobs of one image from a single `docker save` tar stream, read once, front to back.
 *
 * Each blob's `open()` gets a stream that this reader feeds when the blob's tar member comes by; members
 * of released blobs (the registry has them) and everything else are skipped; while the member coming
 * next belongs to a blob nobody has opened yet, reading pauses (backpressure) until the push opens or
 * releases it. A layer is never held whole, in memory or on disk. The stream starts with the first
 * `open()` (not at all when the registry has every blob) and stops once every blob is settled.
 *
 * A blob opened a second time (its upload broke and is retried), or opened after it was released, is read
 * from a save stream of its own: a fresh `docker save` of the same image, read through to that blob's
 * member with every other member skipped unread, while the first stream goes on feeding the other blobs.
 * A reader that lets go of its blob before the end (its upload broke) only has the rest of that member
 * skipped; one whose open was aborted (the push is cancelled) stops the stream for all.
 *
 * Docker (20.10 as well as 25+) writes the members in name order: layer directories are named by
 * their v1 ID (or `blobs/sha256/<diffID>`), so the stream's order is unrelated to the image's. Each
 * `<v1 id>/json` tells which layer its directory holds (see v1LayerIndex) before its layer.tar arrives.
 * When the push is not reading the layer the engine sends (every upload slot waits for a later layer),
 * the order cannot be served without buffering; the reader then fails with what to do instead.
 */
export class SaveStreamReader {
  readonly #options: SaveStreamOptions;
  readonly #slots = new Map<Digest, Slot>();
  readonly #chain: Digest[];
  /** `<v1 id>` directory → the diff ID of the layer it holds (undefined: not recognised). */
  readonly #dirs = new Map<string, Digest | undefined>();
  readonly #controller = new AbortController();
  #reading: Promise<void> | undefined;
  /** Why a blob not yet read cannot be read any more (the stream failed or ended), once it cannot. */
  #failure: ((slot: Slot) => Error) | undefined;
  #waiters: ((changed: boolean) => void)[] = [];
  /** What the stream is in the middle of, for a message when it stops: `layer 2 of 3 (abc…)` or a member's name. */
  #current = 'the start of the stream';

  constructor(options: SaveStreamOptions) {
    this.#options = options;
    this.#chain = chainIds(options.diffIds);
    const unique = [...new Set(options.diffIds)];
    for (const diffId of unique) {
      const position = options.diffIds.indexOf(diffId) + 1;
      this.#slots.set(diffId, { key: diffId, role: 'layer', what: `layer ${position} of ${options.diffIds.length} (${shortId(diffId)})`, state: 'pending' });
    }
    this.#slots.set(options.imageId, { key: options.imageId, role: 'config', what: 'config', state: 'pending' });
  }

  /**
   * A stream of the blob's bytes, given once the save stream reaches them (so the push shows the blob waiting
   * until then), with its size told to `options.onSize` first; given at once, failed, if reading stops
   * before. A blob opened before (or released) is read again from a save stream of its own.
   */
  async open(key: Digest, options?: OpenOptions): Promise<Readable> {
    options?.signal?.throwIfAborted();
    const slot = this.#slot(key);
    if (slot.bytes !== undefined) {
      slot.state = 'done';
      options?.onSize?.(slot.bytes.length);
      this.#notify();
      return Readable.from([slot.bytes]);
    }
    if (slot.state !== 'pending') return this.#again(key, options);
    if (this.#failure !== undefined) throw this.#failure(slot);

    const consumer = new PassThrough({ highWaterMark: ONE_MIB });
    // The uploader listens for errors once it pipes the stream; until then an error must not go unhandled.
    consumer.on('error', () => {});
    slot.consumer = consumer;
    slot.state = 'opened';
    const reached = new Promise<Readable>((resolve) => {
      slot.reached = (size) => {
        if (size !== undefined) options?.onSize?.(size);
        resolve(consumer);
      };
      // Stopped (a failure, a cancel) before the stream got here: the opener gets the stream, failed with the
      // reason, as a reader already reading would. When the stop is another blob's doing (its upload failed),
      // that blob's own error then stays the one the push ends with.
      consumer.once('close', () => resolve(consumer));
    });
    options?.signal?.addEventListener(
      'abort',
      () => {
        consumer.destroy(new CancelledError(`reading ${this.#options.source} was cancelled`));
        // Cancelled: nothing else will read this stream either.
        if (slot.state === 'opened' || slot.state === 'streaming') {
          const reason = new CancelledError(`the push stopped reading ${this.#options.source} (${slot.what})`);
          this.#stop(() => reason);
        }
      },
      { once: true },
    );
    // A reader that goes away otherwise (its upload broke and destroyed its input) lets go of this blob only: the
    // rest of its member is skipped and the other blobs go on being fed. A retry reads it from a stream of its own.
    consumer.once('close', () => {
      if (slot.state !== 'opened' && slot.state !== 'streaming') return;
      this.#options.logger.debug({ key, what: slot.what }, 'save stream reader let go of its blob');
      slot.state = 'done';
      this.#notify();
    });
    this.#notify();
    this.#reading ??= this.#read().catch((err: unknown) => {
      const reason = err instanceof Error ? err : new Error(String(err));
      this.#stop(() => reason);
    });
    return reached;
  }

  /**
   * The push will not read this blob from this stream (the registry has it, or its upload broke and a retry will
   * read it from a stream of its own): its member is skipped.
   */
  release(key: Digest): void {
    const slot = this.#slot(key);
    if (slot.state !== 'pending') return;
    slot.state = 'released';
    this.#notify();
  }

  /**
   * The blob from a new `docker save` stream of the same image, read only as far as its member: layers are
   * never kept to be read twice. The new stream is checked as the first one is (the config's digest here, a
   * layer's diff ID by the uploader), and `start` refuses an image that changed in the engine since.
   */
  #again(key: Digest, options: OpenOptions | undefined): Promise<Readable> {
    this.#options.logger.debug({ key, what: this.#slot(key).what }, 'reading a blob again from a new save stream');
    const again = new SaveStreamReader({ ...this.#options, start: (signal) => this.#options.start(signal, true) });
    for (const slot of again.#slots.values()) if (slot.key !== key) slot.state = 'released';
    return again.open(key, options);
  }

  /**
   * The save stream, saying so when the engine takes long to start it: the push shows no progress
   * meanwhile, and a user who sees nothing for minutes takes it for a hang.
   */
  async #started(): Promise<{ stream: Readable; close(): Promise<void> }> {
    const { source, engine = 'the Docker Engine', logger, slowStartNoticeMs = DEFAULT_SLOW_START_NOTICE_MS } = this.#options;
    const notice = setTimeout(() => {
      logger.warn(
        { source, waitedMs: slowStartNoticeMs },
        `${source}: ${engine} has not started its save stream after ${slowStartNoticeMs / 1000} s; it writes the whole image out first, which takes a while for a big image (Ctrl-C cancels)`,
      );
    }, slowStartNoticeMs);
    try {
      return await this.#options.start(this.#controller.signal, false);
    } finally {
      clearTimeout(notice);
    }
  }

  #slot(key: Digest): Slot {
    const slot = this.#slots.get(key);
    if (slot === undefined) throw new Error(`${key} is not a blob of ${this.#options.source}`);
    return slot;
  }

  async #read(): Promise<void> {
    const { stream, close } = await this.#started();
    if (this.#controller.signal.aborted) {
      // Stopped while the engine was preparing the stream.
      stream.destroy();
      await close();
      return;
    }
    this.#controller.signal.addEventListener('abort', () => void close(), { once: true });
    const extract = tar.extract();
    // Errors of the HTTP body reach the loop below through the extractor.
    stream.on('error', (err) => extract.destroy(err));
    stream.pipe(extract);
    const watch = watchIdle(stream, this.#options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS, (ms) => {
      const { source, engine = 'the Docker Engine' } = this.#options;
      stream.destroy(
        new InvalidSourceError(source,
          `${source}: ${engine} sent nothing for ${ms / 1000} s in the middle of its save stream (at ${this.#current}); check dockerd and its logs, then push again`,
        ),
      );
    });
    this.#controller.signal.addEventListener('abort', watch.stop, { once: true });
    stream.once('close', watch.stop);
    try {
      for await (const entry of extract) {
        await this.#route(entry);
        if (this.#settled()) break;
      }
    } catch (err) {
      if (isPushError(err)) throw err;
      throw new InvalidSourceError(this.#options.source, `${this.#options.source}: the Docker Engine's save stream broke off or is not a tar (${(err as Error).message}); push again`, { cause: err });
    }
    const { source } = this.#options;
    this.#stop(
      (slot) =>
        new InvalidSourceError(source, `${source}: the Docker Engine's save stream has no ${slot.what}; the engine's image is incomplete or changed while it was read, push again`),
    );
  }

  /** Whether every blob is read, skipped, or (the config) held: nothing more is needed from the stream. */
  #settled(): boolean {
    return [...this.#slots.values()].every((slot) => slot.state === 'done' || slot.state === 'released' || slot.bytes !== undefined);
  }

  async #route(entry: Entry): Promise<void> {
    const name = entry.header.name
      .split('/')
      .filter((part: string) => part !== '' && part !== '.')
      .join('/');
    const { imageId, logger } = this.#options;
    this.#current = name;
    if (entry.header.type !== 'file' && entry.header.type !== 'contiguous-file') return drain(entry);

    let match: RegExpExecArray | null;
    if ((match = /^([a-f0-9]{64})\/json$/.exec(name)) !== null) {
      this.#dirs.set(match[1] ?? '', this.#identify(await readSmall(entry, name, this.#options.source)));
      return;
    }
    if ((match = /^([a-f0-9]{64})\/layer\.tar$/.exec(name)) !== null) {
      const diffId = this.#dirs.get(match[1] ?? '');
      if (diffId === undefined) {
        throw new UnsupportedError(
          `${this.#options.source}: cannot tell which layer ${name} of the Docker Engine's save stream is (its json ${this.#dirs.has(match[1] ?? '') ? 'matches no layer of the image' : 'did not come first'}); ${this.#options.alternative}`,
        );
      }
      return this.#deliver(diffId, entry, name);
    }
    // Newer Docker names blobs by digest (a layer's is its diff ID); older names the config <imageID>.json.
    match = /^blobs\/sha256\/([a-f0-9]{64})$/.exec(name) ?? /^([a-f0-9]{64})\.(?:tar|json)$/.exec(name);
    const digest = match !== null ? (`sha256:${match[1] ?? ''}` as Digest) : undefined;
    if (digest === imageId) return this.#config(entry, name);
    if (digest !== undefined && this.#slots.get(digest)?.role === 'layer' && !name.endsWith('.json')) return this.#deliver(digest, entry, name);
    logger.debug({ member: name }, 'save stream member skipped');
    return drain(entry);
  }

  #identify(bytes: Buffer): Digest | undefined {
    try {
      const index = v1LayerIndex(parseV1LayerJson(bytes), this.#chain);
      return index === undefined ? undefined : this.#options.diffIds[index];
    } catch {
      return undefined; // reported when its layer.tar arrives
    }
  }

  async #deliver(key: Digest, entry: Entry, name: string): Promise<void> {
    const slot = this.#slot(key);
    if (slot.state === 'pending') await this.#waitFor(slot, name);
    const { consumer } = slot;
    if (slot.state !== 'opened' || consumer === undefined) {
      this.#options.logger.debug({ member: name, key, state: slot.state }, 'save stream layer skipped');
      return drain(entry);
    }
    this.#options.logger.debug({ member: name, key, size: entry.header.size }, 'save stream layer read');
    slot.state = 'streaming';
    this.#current = `${slot.what}, ${name}`;
    // The engine did not say how big a layer is; its tar header does, before the first byte.
    slot.reached?.(entry.header.size);
    // Once the reader lets go (its upload broke), the rest of the member is skipped: the stream goes on for the others.
    let wanted = true;
    for await (const chunk of entry) {
      if (wanted && (consumer.destroyed || (!consumer.write(chunk) && !(await drained(consumer))))) wanted = false;
    }
    slot.state = 'done';
    if (!consumer.destroyed) consumer.end();
    this.#notify();
  }

  async #config(entry: Entry, name: string): Promise<void> {
    const { imageId, source } = this.#options;
    const slot = this.#slot(imageId);
    const bytes = await readSmall(entry, name, source);
    const actual: Digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    if (actual !== imageId) throw new DigestMismatchError(imageId, actual, `${source} config (${name} in the Docker Engine's save stream)`);
    slot.bytes = bytes;
    if (slot.state === 'opened' && slot.consumer !== undefined) {
      slot.state = 'done';
      slot.reached?.(bytes.length);
      slot.consumer.end(bytes);
      this.#notify();
    }
  }

  /**
   * Waits, with the stream paused, until the push opens or releases `slot`. Fails when nothing changes
   * for the stall timeout: with blobs opened and waiting, the order of the stream cannot be served.
   */
  async #waitFor(slot: Slot, name: string): Promise<void> {
    const timeout = this.#options.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS;
    while (slot.state === 'pending') {
      if (await this.#changed(timeout)) continue;
      const waiting = [...this.#slots.values()].filter((s) => s.state === 'opened');
      if (waiting.length === 0) {
        throw new CancelledError(`${this.#options.source}: nothing read the Docker Engine's save stream for ${timeout / 1000} s; it was closed`);
      }
      const layers = [...this.#slots.values()].filter((s) => s.role === 'layer').length;
      throw new UnsupportedError(
        `${this.#options.source}: the Docker Engine sends ${slot.what} (as ${name}) before ${waiting.map((s) => s.what).join(', ')}, which the push is waiting for; ` +
          `rxpush never holds a whole layer in memory or on disk, so this order cannot be served: open every blob of this source at once (it is marked sequential; rxpush's uploader does), or ${this.#options.alternative}`,
      );
    }
  }

  /** Resolves true on the next open or release, false after `timeout` ms without one. */
  #changed(timeout: number): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== wake);
        resolve(false);
      }, timeout);
      const wake = (changed: boolean): void => {
        clearTimeout(timer);
        resolve(changed);
      };
      this.#waiters.push(wake);
    });
  }

  #notify(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake(true);
  }

  /** Stops reading: readers still waiting get the error `reason` makes for their blob, as does any later `open()`. */
  #stop(reason: (slot: Slot) => Error): void {
    this.#failure ??= reason;
    this.#controller.abort();
    for (const slot of this.#slots.values()) {
      if (slot.state === 'opened' || slot.state === 'streaming') {
        slot.state = 'done';
        slot.consumer?.destroy(reason(slot));
      }
    }
    this.#notify();
  }
}

/**
 * Calls `onIdle` when `stream` flows (someone wants its bytes) yet delivers none for `timeoutMs`. Time
 * the stream spends paused is rxpush waiting on the registry, not the engine stalling: it does not count.
 */
function watchIdle(stream: Readable, timeoutMs: number, onIdle: (ms: number) => void): { stop: () => void } {
  let last = Date.now();
  const touch = (): void => void (last = Date.now());
  stream.on('data', touch);
  stream.on('resume', touch);
  const timer = setInterval(
    () => {
      if (stream.readableFlowing !== true || stream.destroyed) return touch();
      if (Date.now() - last >= timeoutMs) {
        stop();
        onIdle(timeoutMs);
      }
    },
    Math.max(10, Math.min(1000, timeoutMs / 4)),
  );
  const stop = (): void => {
    clearInterval(timer);
    stream.off('data', touch);
    stream.off('resume', touch);
  };
  return { stop };
}

async function drain(entry: Entry): Promise<void> {
  for await (const chunk of entry) void chunk;
}

async function readSmall(entry: Entry, name: string, source: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of entry) {
    size += (chunk as Buffer).length;
    if (size > MAX_DOCUMENT_SIZE) throw new InvalidSourceError(source, `${source}: ${name} in the Docker Engine's save stream is more than ${MAX_DOCUMENT_SIZE} bytes, too big for a config or layer json`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/** Resolves true when `stream` wants more, false when it is gone. */
function drained(stream: PassThrough): Promise<boolean> {
  return new Promise((resolve) => {
    const onDrain = (): void => {
      stream.off('close', onClose);
      resolve(true);
    };
    const onClose = (): void => {
      stream.off('drain', onDrain);
      resolve(false);
    };
    stream.once('drain', onDrain).once('close', onClose);
  });
}
