export { readImages } from './read-images.js';
export type { ReadImagesOptions } from './read-images.js';
export { spoolArchive } from './spool-archive.js';
export type { SpoolArchiveOptions, SpooledSource } from './spool-archive.js';
export { checkImagePlatform, findPlatform, parsePlatform, platformText } from './shared/platform.js';
export { parseIndex } from './oci/documents.js';
export type { InvalidDocument } from './oci/documents.js';
