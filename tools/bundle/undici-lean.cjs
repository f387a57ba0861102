'use strict';
// What the CLI bundle gets for `import … from 'undici'` (tools/bundle-cli.mjs): the dispatchers rxpush
// uses (Agent, Pool, Client) and the request API, without the rest of undici's index (fetch, cookies,
// WebSocket, EventSource, caches, mocks), which the CLI never calls and which cost ~35 ms to load.
// undici's lib/global.js reads globalThis[Symbol.for('undici.globalDispatcher.1')] when it loads, and
// Node answers that read by compiling its own internal copy of undici: it is loaded only when asked for.
const Dispatcher = require('undici/lib/dispatcher/dispatcher');
const Agent = require('undici/lib/dispatcher/agent');
const Pool = require('undici/lib/dispatcher/pool');
const Client = require('undici/lib/dispatcher/client');
const errors = require('undici/lib/core/errors');
const api = require('undici/lib/api');
const buildConnector = require('undici/lib/core/connect');

// As undici's index does: request(), stream() … on every dispatcher.
Object.assign(Dispatcher.prototype, api);

module.exports = {
  Dispatcher,
  Agent,
  Pool,
  Client,
  errors,
  buildConnector,
  getGlobalDispatcher: () => require('undici/lib/global').getGlobalDispatcher(),
  setGlobalDispatcher: (dispatcher) => require('undici/lib/global').setGlobalDispatcher(dispatcher),
};
