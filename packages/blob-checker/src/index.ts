export { checkBlobs } from './check-blobs.js';
export type { CheckBlobsOptions } from './check-blobs.js';
