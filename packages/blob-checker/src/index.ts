export { checkBlobs } from './check-blobs.js';
export type { CheckBlobsOptions } from './check-blobs.js';
export { rememberBlobs } from './remember-blobs.js';
export type { RememberBlobsOptions } from './remember-blobs.js';
export { DigestCache, defaultCacheDir, diskFiles } from './digest-cache.js';
export type { BlobLocation, CacheFiles, CompressedForm, DigestCacheOptions } from './digest-cache.js';
