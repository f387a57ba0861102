'use strict';
// What the CLI bundle gets for yargs's `import cliui from 'cliui'` (tools/bundle-cli.mjs): cliui and its
// text-wrapping modules are loaded on the first call, which happens only when help or an error is shown.
module.exports = function cliui(options) {
  return require('rxpush-bundle:cliui').default(options);
};
