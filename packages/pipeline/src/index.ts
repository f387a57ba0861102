export { push, retag } from './push.js';
export type { PushOptions } from './options.js';
