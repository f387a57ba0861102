export { pushManifests } from './push-manifests.js';
export type { PushManifestsOptions } from './push-manifests.js';
export { signManifests } from './sign-manifests.js';
export type { SignManifestsOptions } from './sign-manifests.js';
export { verifyImage } from './verify-image.js';
export type { VerifyImageOptions, VerifyResult, VerifiedSignature } from './verify-image.js';
export { buildManifest, buildIndex, convertMediaType, formatOf } from './build-manifest.js';
export { buildSchema1, EMPTY_LAYER, EMPTY_LAYER_DIGEST } from './schema1.js';
export type { Schema1Payload, Schema1Target } from './schema1.js';
export { signSchema1, parseSchema1 } from './jws.js';
export type { ParsedSchema1, Schema1Signature } from './jws.js';
export {
  COSIGN_SIGNATURE_TYPE,
  SIGNATURE_ANNOTATION,
  SIMPLE_SIGNING_MEDIA_TYPE,
  dockerReference,
  signatureTag,
  signPayload,
  simpleSigningPayload,
  verifyPayload,
} from './cosign.js';
export {
  assertKeyFits,
  generateSigningKey,
  jwsAlgorithm,
  libtrustKeyId,
  loadSigningKey,
  loadVerifyKey,
  parseSigningKey,
  parseVerifyKey,
} from './signing-key.js';
export type { LoadKeyOptions, SignatureScheme, SigningKey, VerifyKey } from './signing-key.js';
