'use strict';
// What the CLI bundle gets for undici's `require('./client-h2.js')` in lib/dispatcher/client.js
// (tools/bundle-cli.mjs): the same connectH2, loaded on its first call. client.js calls it only for a socket
// whose TLS handshake chose HTTP/2 (undici offers h2 only with `allowH2`, which rxpush does not set), and
// loading it loads node:http2 (~2 ms of every push).
module.exports = function connectH2(client, socket) {
  return require('rxpush-undici:./client-h2.js')(client, socket);
};
