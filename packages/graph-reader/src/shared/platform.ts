import type { Descriptor, Platform } from '@rxpush/core';
import { SourceNotFoundError, UsageError } from '@rxpush/core';

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
  return entries.find(({ platform }) => platform !== undefined && isPlatform(platform, wanted));
}

function isPlatform(platform: Platform, wanted: Platform): boolean {
  return platform.os === wanted.os && platform.architecture === wanted.architecture && (wanted.variant === undefined || platform.variant === wanted.variant);
}

/**
 * `--platform` given for a source that names one image: refuses it when its config says another platform, as
 * `docker pull --platform` does, rather than pushing an amd64 image to where arm64 was asked for. A config
 * that names no platform (an artifact's, or not JSON) is pushed as it is.
 *
 * @throws {SourceNotFoundError} naming both platforms.
 */
export function checkImagePlatform(config: Uint8Array, wanted: Platform, source: string): void {
  const platform = configPlatform(config);
  if (platform === undefined || isPlatform(platform, wanted)) return;
  throw new SourceNotFoundError(source, `${source} is one image, for ${platformText(platform)}, not for ${platformText(wanted)} (--platform); drop --platform to take it as it is`);
}

/** The `os`, `architecture` and `variant` of an image config, when it has the first two as strings. */
function configPlatform(config: Uint8Array): Platform | undefined {
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(config.buffer, config.byteOffset, config.byteLength).toString('utf8'));
  } catch {
    return undefined;
  }
  const { os, architecture, variant } = (typeof json === 'object' && json !== null ? json : {}) as Record<string, unknown>;
  if (typeof os !== 'string' || typeof architecture !== 'string' || os === '' || architecture === '') return undefined;
  return { os, architecture, ...(typeof variant === 'string' && variant !== '' && { variant }) };
}
