'use strict';
// What the CLI bundle gets for `import stringWidth from 'string-width'` (tools/bundle-cli.mjs): one copy
// (yargs's; cliui and wrap-ansi asked for another major with the same API), loaded on the first call.
// yargs imports it when it loads, but only help text and usage errors measure strings, and building it
// (an Intl.Segmenter and Unicode property regexps) costs ~10 ms that a push never needs.
let width;
module.exports = function stringWidth(text, options) {
  width ??= require('rxpush-bundle:string-width').default;
  return width(text, options);
};
