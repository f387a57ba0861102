import type { Logger } from '@rxpush/core';

/**
 * How to read a `docker save` archive; `source` is the whole source string as the user gave it.
 * Its own module so that both archive forms' readers can take it without importing each other.
 */
export interface ReadDockerArchiveOptions {
  readonly source: string;
  readonly allTags: boolean;
  readonly logger: Logger;
}
