export type { PushOptions } from './options.js';
