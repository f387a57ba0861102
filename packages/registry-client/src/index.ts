export { RegistryClient } from './registry-client.js';
export { redactUrl } from './urls.js';
export type { Authenticator, BlobInfo, Body, RawManifest, RegistryClientOptions, RequestOptions, UploadSession, UploadStart } from './types.js';
export { backoffDelay, isRetryable, isRetryableStatus, parseRetryAfter, retryAfterOf, retryDelay, retryPolicy, retryReason, sleep } from './retry.js';
export type { RetryOptions, RetryPolicy } from './retry.js';
