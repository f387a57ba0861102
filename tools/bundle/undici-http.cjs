'use strict';
// What the CLI bundle gets for `require('node:http')` in undici's lib/core/util.js and lib/dispatcher/client.js
// (tools/bundle-cli.mjs). undici loads Node's HTTP module as it loads, for two values, and loading it
// (_http_agent, _http_client, _http_server, _http_incoming, _http_outgoing…) is ~1 ms of every push:
//
// - `maxHeaderSize`, the default limit of a Client's answer headers: Node's --max-http-header-size, 16 KiB
//   unless the process was started with that option (on its command line or in NODE_OPTIONS), when Node's own
//   answer is asked for;
// - `IncomingMessage`, which lib/core/util.js's destroy() compares a stream's constructor with, to detach the
//   socket of a request body that is a node:http message before destroying it. No such message exists in the
//   CLI, which never loads node:http (test/tools.test.ts checks that a push does not): no stream is one.
const DEFAULT_MAX_HEADER_SIZE = 16 * 1024;

class IncomingMessage {}

module.exports = {
  get maxHeaderSize() {
    const options = `${process.execArgv.join(' ')} ${process.env.NODE_OPTIONS ?? ''}`;
    return options.includes('--max-http-header-size') ? require('node:http').maxHeaderSize : DEFAULT_MAX_HEADER_SIZE;
  },
  IncomingMessage,
};
