export { uploadBlobs } from './upload-blobs.js';
export type { UploadBlobsOptions } from './upload-blobs.js';
export { HashingStream } from './hashing-stream.js';
export type { HashingStreamOptions } from './hashing-stream.js';
