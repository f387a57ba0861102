export { readImages } from './read-images.js';
export type { ReadImagesOptions } from './read-images.js';
