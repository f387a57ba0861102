import { UsageError } from '@rxpush/core';

/** What follows `oci:`: the layout directory and, optionally, which image in it. */
export interface OciReference {
  readonly dir: string;
  /** A ref name (`org.opencontainers.image.ref.name`) or a digest. */
  readonly ref?: string;
}

// The OCI image-spec's grammar for ref names, as skopeo checks it: components of letters and digits
// joined by - . _ : @ + or --, separated by slashes. It admits digests (sha256:…) too.
const COMPONENT = '[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*';
const REF_NAME_PATTERN = new RegExp(`^${COMPONENT}(?:/${COMPONENT})*$`);

/**
 * Splits `PATH[:REF]` the way skopeo's `oci:` transport does: at the first colon, so PATH cannot
 * contain one while REF (a digest, or a name like `app:1.0`) can.
 */
export function parseOciReference(text: string, transport = 'oci'): OciReference {
  const colon = text.indexOf(':');
  const dir = colon < 0 ? text : text.slice(0, colon);
  const ref = colon < 0 ? '' : text.slice(colon + 1);
  if (dir === '') throw new UsageError(`source "${transport}:${text}" names no ${transport === 'oci' ? 'directory' : 'archive'}: use ${transport}:PATH[:REF], e.g. ${transport}:${transport === 'oci' ? './layout' : './image.tar'}:latest`);
  if (ref !== '' && !REF_NAME_PATTERN.test(ref)) {
    throw new UsageError(`source "${transport}:${text}": "${ref}" is not a valid ref name or digest (letters, digits and - . _ : @ + separators); note that PATH cannot contain ":"`);
  }
  return { dir, ...(ref !== '' && { ref }) };
}
