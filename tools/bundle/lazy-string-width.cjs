'use strict';
// What the CLI bundle gets for `import stringWidth from 'string-width'` (tools/bundle-cli.mjs): one copy
// (yargs's; cliui and wrap-ansi asked for another major with the same API), loaded on the first call that
// needs it. Building it (an Intl.Segmenter and Unicode property regexps of the `v` flag) costs ~10–20 ms, and
// rxpush's help and usage errors are printable ASCII, whose width string-width itself gives as the length
// (its first check, before it strips escapes or segments): such text is measured here without loading it.
const PRINTABLE_ASCII = /^[\u0020-\u007E]*$/;
let width;
module.exports = function stringWidth(text, options) {
  if (typeof text === 'string' && PRINTABLE_ASCII.test(text)) return text.length;
  width ??= require('rxpush-bundle:string-width').default;
  return width(text, options);
};
