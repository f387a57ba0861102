import { isDigest, type Digest } from './digest.js';
import { ReferenceFormatError, UsageError } from './errors.js';
import { printable } from './printable.js';

/** A parsed, normalised image reference: where an image is pushed to or copied from. */
export interface ImageReference {
  /** host[:port]; Docker Hub's names normalise to `docker.io`. */
  readonly registry: string;
  /** The repository path, with `library/` added for single-name Docker Hub images. */
  readonly repository: string;
  readonly tag?: string;
  readonly digest?: Digest;
}

const COMPONENT = '[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*';
const NAME = new RegExp(`^${COMPONENT}(?:/${COMPONENT})*$`);
const TAG = /^[\w][\w.-]{0,127}$/;
const DOMAIN = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?$|^\[[0-9a-fA-F:.]+\](?::[0-9]+)?$/;
const DOCKER_HUB_ALIASES = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io']);

/** True when `repository` is a valid repository path (Docker's name grammar, without a registry). */
export function isValidRepository(repository: string): boolean {
  return NAME.test(repository);
}

/** What {@link isValidTag} takes, in words for a message. */
export const TAG_RULE = 'letters, digits, _ . - (at most 128), not starting with . or -';

/** True when `tag` is a valid Docker tag. */
export function isValidTag(tag: string): boolean {
  return TAG.test(tag);
}

/**
 * Parses `[docker://][REGISTRY/]REPOSITORY[:TAG][@DIGEST]` with Docker's rules.
 *
 * @throws {ReferenceFormatError} naming what is wrong with the reference.
 * @example parseReference('localhost:5000/app:1.0') // { registry: 'localhost:5000', repository: 'app', tag: '1.0' }
 */
export function parseReference(input: string): ImageReference {
  const text = input.startsWith('docker://') ? input.slice('docker://'.length) : input;
  if (text === '') throw new ReferenceFormatError(input, 'it is empty');
  if (/\s/.test(text)) throw new ReferenceFormatError(input, 'it contains white space');

  let rest = text;
  let digest: Digest | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    const candidate = rest.slice(at + 1);
    if (!isDigest(candidate)) throw new ReferenceFormatError(input, `"${candidate}" is not a sha256 digest`);
    digest = candidate;
    rest = rest.slice(0, at);
  }

  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw new ReferenceFormatError(input, `tag "${tag}" is not valid (letters, digits, _ . -, at most 128, not starting with . or -)`);
  }

  let registry = 'docker.io';
  let path = rest;
  const slash = rest.indexOf('/');
  if (slash >= 0) {
    const first = rest.slice(0, slash);
    if (first.includes('.') || first.includes(':') || first === 'localhost' || first !== first.toLowerCase()) {
      if (!DOMAIN.test(first)) throw new ReferenceFormatError(input, `registry "${first}" is not a valid host[:port]`);
      // The grammar takes any digits; a URL takes 1–65535 (and fails with a bare "Invalid URL").
      const port = /:(\d+)$/.exec(first)?.[1];
      if (port !== undefined && (Number(port) < 1 || Number(port) > 65_535)) throw new ReferenceFormatError(input, `registry "${first}" has port ${port}: a port is 1 to 65535`);
      registry = DOCKER_HUB_ALIASES.has(first) ? 'docker.io' : first;
      path = rest.slice(slash + 1);
    }
  }
  if (path === '') throw new ReferenceFormatError(input, 'the repository name is missing');
  if (!NAME.test(path)) {
    throw new ReferenceFormatError(input, `repository "${path}" must be lowercase letters, digits and separators (. _ - /)`);
  }
  if (registry === 'docker.io' && !path.includes('/')) path = `library/${path}`;
  if (registry.length + 1 + path.length > 255) throw new ReferenceFormatError(input, 'the name is longer than 255 characters');

  return { registry, repository: path, ...(tag !== undefined && { tag }), ...(digest !== undefined && { digest }) };
}

/** The canonical text of a reference: `registry/repository[:tag][@digest]`. */
export function formatReference(ref: ImageReference): string {
  return `${ref.registry}/${ref.repository}${ref.tag !== undefined ? `:${ref.tag}` : ''}${ref.digest !== undefined ? `@${ref.digest}` : ''}`;
}

/**
 * Refuses a reference that is only a registry's address, `HOST:PORT` with no repository (`localhost:5000`,
 * `registry.example:443`, with or without `docker://`): Docker's rules read it as the image HOST on Docker Hub,
 * tagged PORT, so a push meant for that registry would go to Docker Hub; nobody means that (`docker push
 * localhost:5000` fails too, finding no such local image). Every other reference passes. The way out is written in
 * the form given (with `docker://` if it had it).
 *
 * @throws {UsageError} saying what Docker's rules make of it and what to write instead; `role` opens the message.
 * @example assertNamesRepository('localhost:5000', 'destination') // throws: destination localhost:5000 names a registry but no repository …
 */
export function assertNamesRepository(reference: string, role: string): void {
  const name = reference.replace(/^docker:\/\//, '');
  const match = /^(localhost|[^/:]*\.[^/:]*):(\d+)$/.exec(name);
  if (match === null) return;
  const prefix = reference.startsWith('docker://') ? 'docker://' : '';
  throw new UsageError(
    `${role} ${printable(reference)} names a registry but no repository (Docker's rules read it as docker.io/library/${match[1]}:${match[2]}); write ${prefix}REGISTRY/REPO[:TAG], e.g. ${printable(reference)}/app:1.0`,
  );
}
