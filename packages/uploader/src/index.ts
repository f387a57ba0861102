export { uploadBlobs } from './upload-blobs.js';
export { DEFAULT_UPLOAD_SLOTS, sharedUploadLimiter, UploadLimiter } from './upload-limiter.js';
export type { UploadBlobsOptions } from './upload-blobs.js';
export { HashingStream } from './hashing-stream.js';
export type { HashingStreamOptions } from './hashing-stream.js';
export { BLOCK_SIZE, DEFAULT_COMPRESSION_LEVEL, gzipLayer } from './compress/gzip-layer.js';
export type { GzipLayerOptions } from './compress/gzip-layer.js';
