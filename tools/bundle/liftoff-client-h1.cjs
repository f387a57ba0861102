'use strict';
// What the CLI bundle gets for undici's `require('./client-h1.js')` in lib/dispatcher/client.js
// (tools/bundle-cli.mjs): the same connectH1, whose first call compiles undici's HTTP parser (WebAssembly)
// with V8's baseline compiler (Liftoff) alone.
//
// With V8's defaults, the parser's hot functions are compiled again by TurboFan in the background, and the
// process waits for that before it exits (~0.3 s and ~35 MB of every push). The bin used to set
// --liftoff-only as it started; but a V8 flag that differs from V8's defaults makes Node refuse the code cache
// its built-in modules ship with (the cache carries a hash of V8's flags), so every built-in module a push
// loads (http, tls, crypto, streams, fs/promises…) was compiled from source: ~15 ms of a second push. So the
// flags are changed only while the parser compiles, and put back to V8's defaults right after, which is the
// same flag hash again (test/tools.test.ts checks that a built-in loaded afterwards still uses Node's cache,
// and that the bundle's own code cache is taken on the next run). The parser is compiled eagerly meanwhile:
// a function left to compile lazily, on its first call, would be compiled once the defaults are back, and
// then tiered up by TurboFan after all.
const connectH1 = require('rxpush-undici:./client-h1.js');

const BASELINE_ONLY = ['--liftoff-only', '--no-wasm-lazy-compilation'];
// --liftoff-only also turns off wasm-tier-up and wasm-dynamic-tiering (V8's flag implications): all go back.
const V8_DEFAULTS = ['--no-liftoff-only', '--wasm-tier-up', '--wasm-dynamic-tiering', '--wasm-lazy-compilation'];

// WebAssembly flags the process was started with are its user's choice: they are left as they are.
let compiled = process.execArgv.some((arg) => /liftoff|wasm/.test(arg));

module.exports = function connectH1WithBaselineParser(client, socket) {
  if (compiled) return connectH1(client, socket);
  const { setFlagsFromString } = require('node:v8');
  for (const flag of BASELINE_ONLY) setFlagsFromString(flag);
  try {
    const connected = connectH1(client, socket);
    compiled = true;
    return connected;
  } finally {
    for (const flag of V8_DEFAULTS) setFlagsFromString(flag);
  }
};
