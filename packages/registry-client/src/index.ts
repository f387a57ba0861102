export { RegistryClient } from './registry-client.js';
export { redactUrl } from './urls.js';
export type { Authenticator, BlobInfo, Body, RawManifest, RegistryClientOptions, RequestOptions, UploadSession, UploadStart } from './types.js';
