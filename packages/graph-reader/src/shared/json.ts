import { jsonSyntaxReason } from '@rxpush/core';

/** A parsed JSON object, its members not yet checked. */
export type JsonObject = Record<string, unknown>;

/**
 * Parses `bytes` (UTF-8) or `text` as JSON. Every source reads its documents through this, so that a
 * document that is not JSON fails the same way everywhere: with the error `invalid` makes of the
 * problem (`is not JSON (…)`), which names the file and what to do about it.
 */
export function parseJson(input: Uint8Array | string, invalid: (problem: string) => Error): unknown {
  const text = typeof input === 'string' ? input : Buffer.from(input).toString('utf8');
  try {
    return JSON.parse(text);
  } catch (err) {
    // Line and column, never V8's message: it quotes the document, whatever it holds.
    throw invalid(`is not JSON (${jsonSyntaxReason(err, text)})`);
  }
}

/** {@link parseJson} for a document that must be a JSON object. */
export function parseJsonObject(input: Uint8Array | string, invalid: (problem: string) => Error): JsonObject {
  const value = parseJson(input, invalid);
  if (!isJsonObject(value)) throw invalid('is not a JSON object');
  return value;
}

/** Whether `value` is a JSON object (not null, not an array). */
export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
