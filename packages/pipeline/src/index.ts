export { push, retag } from './push.js';
export type { PushOptions, SourceRegistryOptions } from './options.js';
// The upload limit shared by pushes of one process: re-exported so that users of push() need not depend on the uploader.
export { sharedUploadLimiter, UploadLimiter } from '@rxpush/uploader';
