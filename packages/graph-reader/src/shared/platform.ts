import type { Descriptor, Platform } from '@rxpush/core';
import { UsageError } from '@rxpush/core';

/**
 * Reads `--platform os/arch[/variant]` (e.g. `linux/arm64/v8`), as docker and skopeo write it.
 *
 * @throws {UsageError} for anything else.
 * @example parsePlatform('linux/arm/v7') // { os: 'linux', architecture: 'arm', variant: 'v7' }
 */
export function parsePlatform(text: string): Platform {
  const parts = text.split('/');
  const [os, architecture, variant] = parts;
  if (parts.length < 2 || parts.length > 3 || parts.some((part) => !/^[a-z0-9._-]+$/i.test(part)) || os === undefined || architecture === undefined) {
    throw new UsageError(`--platform "${text}" is not os/arch[/variant], e.g. linux/amd64 or linux/arm64/v8`);
  }
  return { os, architecture, ...(variant !== undefined && { variant }) };
}

/** `linux/arm64/v8`: a platform as people write it. */
export function platformText(platform: Platform | undefined): string {
  if (platform === undefined) return 'no platform';
  return [platform.os, platform.architecture, platform.variant].filter((part) => part !== undefined && part !== '').join('/');
}

/**
 * The entry of an index for `wanted`: same os and architecture, and the variant when one is asked for
 * (without one, the first entry of that os and architecture, as docker pull picks).
 */
export function findPlatform(entries: readonly Descriptor[], wanted: Platform): Descriptor | undefined {
  return entries.find(
    ({ platform }) =>
      platform !== undefined && platform.os === wanted.os && platform.architecture === wanted.architecture && (wanted.variant === undefined || platform.variant === wanted.variant),
  );
}
