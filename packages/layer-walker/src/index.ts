export { walkLayers } from './walk-layers.js';
export type { WalkLayersOptions } from './walk-layers.js';
