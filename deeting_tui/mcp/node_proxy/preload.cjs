// Deeting's proxy preload for Node MCP servers granted network:HOST (loaded with
// NODE_OPTIONS=--require=<this file>). Node 20/22's built-in fetch ignores HTTP(S)_PROXY, so
// in the sandbox, where the only way out is Deeting's proxy, a server's fetch() would fail.
// This installs undici's EnvHttpProxyAgent (proxy from HTTPS_PROXY/HTTP_PROXY, honouring
// NO_PROXY) as the global dispatcher, which the built-in fetch reads through
// globalThis[Symbol.for('undici.globalDispatcher.1')]. The undici beside this file is pinned
// by the lock file Deeting ships, at the major of node's own bundled copy, so the dispatcher
// speaks the interface the built-in fetch expects. It does not cover node:http/node:https or
// raw sockets: the sandbox still denies a direct connection.
'use strict';
const env = process.env;
if (env.HTTPS_PROXY || env.https_proxy || env.HTTP_PROXY || env.http_proxy) {
  const { setGlobalDispatcher, EnvHttpProxyAgent } = require(__dirname + '/node_modules/undici');
  // undici warns that EnvHttpProxyAgent is experimental on every start: only that warning is
  // held back, and only while the agent is made, so the server's log stays the server's.
  const emitWarning = process.emitWarning;
  process.emitWarning = function (warning, ...rest) {
    const options = rest[0];
    const code = options && typeof options === 'object' ? options.code : rest[1];
    if (code === 'UNDICI-EHPA') return;
    return emitWarning.call(process, warning, ...rest);
  };
  try {
    setGlobalDispatcher(new EnvHttpProxyAgent());
  } finally {
    process.emitWarning = emitWarning;
  }
}
