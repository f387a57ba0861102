#!/usr/bin/env node
// A committed shim, so the bin link exists from install time on; the code is built into dist.
import { setFlagsFromString } from 'node:v8';

// undici's HTTP parser is WebAssembly; V8 re-compiles it with TurboFan in the background and the
// process waits for that before it exits (~0.3 s, ~35 MB). The baseline compiler is fast enough
// for parsing registry answers. Set before anything loads undici.
setFlagsFromString('--liftoff-only');

const { main } = await import('../dist/main.js');
process.exitCode = await main(process.argv.slice(2));
