import type { Digest } from './digest.js';

/** An OCI content descriptor: what a manifest says about one blob or manifest. */
export interface Descriptor {
  readonly mediaType: string;
  readonly digest: Digest;
  readonly size: number;
  readonly urls?: readonly string[];
  readonly annotations?: Readonly<Record<string, string>>;
  readonly platform?: Platform;
  /** OCI 1.1: the type of artifact a manifest is, in a referrers index and wherever else a descriptor names it. */
  readonly artifactType?: string;
}

/** The platform of one manifest in an index. */
export interface Platform {
  readonly architecture: string;
  readonly os: string;
  readonly variant?: string;
  readonly 'os.version'?: string;
  readonly 'os.features'?: readonly string[];
}
