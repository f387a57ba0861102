export { pushManifests } from './push-manifests.js';
export type { PushManifestsOptions } from './push-manifests.js';
export { buildManifest, buildIndex, convertMediaType, formatOf } from './build-manifest.js';
