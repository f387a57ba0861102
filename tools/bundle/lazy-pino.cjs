'use strict';
// What the CLI bundle gets for `import { pino } from 'pino'` (tools/bundle-cli.mjs): the same pino, evaluated
// only when a line is logged. At the default level (warn) a push logs nothing, and loading pino (its
// serializers, redaction, sonic-boom, thread-stream and node:worker_threads) cost a few ms of every push.
// rxpush calls `pino(options, destination)` and `pino.destination(options)`, and then only the Logger seam of
// @rxpush/core (debug, info, warn, error, child); a call below the level is dropped here as pino would drop
// it, and the first one at or above it makes the real logger (and the chain of children) and passes it on.

/** pino's own level numbers; a level not named here makes the real logger at once. */
const LEVELS = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60, silent: Infinity };
const DESTINATION = Symbol('rxpush.lazy-pino.destination');

/** Builds `pino` on top of `load()`, which returns the real module (pino's exports) on first use. */
function lazyPino(load) {
  function pino(options = {}, destination) {
    const real = () => {
      const module = load();
      const out = destination?.[DESTINATION] !== undefined ? module.destination(destination[DESTINATION]) : destination;
      return out === undefined ? module.pino(options) : module.pino(options, out);
    };
    const min = LEVELS[options.level ?? 'info'];
    return min === undefined ? real() : lazyLogger(real, min);
  }
  pino.destination = (options) => ({ [DESTINATION]: options });
  return pino;
}

function lazyLogger(make, min) {
  let real;
  const get = () => (real ??= make());
  const at = (name) => (...args) => {
    if (LEVELS[name] >= min) get()[name](...args);
  };
  return {
    trace: at('trace'),
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    fatal: at('fatal'),
    child: (bindings, options) => {
      const level = options?.level === undefined ? min : LEVELS[options.level];
      return level === undefined ? get().child(bindings, options) : lazyLogger(() => get().child(bindings, options), level);
    },
  };
}

// tools/bundle-cli.mjs resolves this one `pino` to the real package.
const pino = lazyPino(() => require('pino'));
module.exports = { pino, default: pino, lazyPino };
