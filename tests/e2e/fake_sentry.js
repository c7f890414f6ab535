// A local fake Sentry for the crash tests (test_crash_oracle.py), from the npm registry:
// sentry-testkit's local server receives the envelopes (one server per DSN project, so
// DSN routing shows), and @sentry/core's parseEnvelope parses every request body again
// as an independent check. Each request's path and X-Sentry-Auth are recorded.
//
//   NODE_PATH=$BUILD/npm/node_modules node fake_sentry.js PROJECT...
//
// Binds 127.0.0.1 only. Prints one JSON line {"dsns": {PROJECT: DSN}, "control": URL};
// GET CONTROL/reports gives what was received. Exits when its stdin closes (the test
// that started it ends), so it never outlives the test.
'use strict';

const http = require('http');
const zlib = require('zlib');
const sentryTestkit = require('sentry-testkit');
const { parseEnvelope } = require('@sentry/core');

// The testkit's server listens on every interface; these tests bind loopback only.
const listen = http.Server.prototype.listen;
http.Server.prototype.listen = function (...args) {
  const cb = args.find((a) => typeof a === 'function');
  return listen.call(this, 0, '127.0.0.1', cb);
};

// Record each request (path, auth header, raw body) before the testkit's app sees it.
const requests = [];
const createServer = http.createServer;
http.createServer = function (app) {
  return createServer.call(http, (req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      let body = Buffer.concat(chunks);
      if ((req.headers['content-encoding'] || '') === 'gzip') body = zlib.gunzipSync(body);
      let parsed = null;
      let error = null;
      try {
        const [headers, items] = parseEnvelope(new Uint8Array(body));
        // A payload with a declared length comes back as bytes: the event is its JSON.
        const json = (p) => (p instanceof Uint8Array ? JSON.parse(new TextDecoder().decode(p)) : p);
        parsed = { headers, items: items.map(([h, p]) => ({ header: h, payload: json(p) })) };
      } catch (e) {
        error = String(e && e.message || e);
      }
      requests.push({
        path: req.url, port: req.socket.localPort, auth: req.headers['x-sentry-auth'] || null,
        content_type: req.headers['content-type'] || null, body: body.toString('utf8'),
        envelope: parsed, parse_error: error,
      });
    });
    app(req, res);
  });
};

async function main() {
  const projects = process.argv.slice(2);
  const kits = {};
  const dsns = {};
  for (const p of projects) {
    const { testkit, localServer } = sentryTestkit();
    await localServer.start(`http://key@127.0.0.1/${p}`);
    kits[p] = testkit;
    dsns[p] = localServer.getDsn().replace('@localhost:', '@127.0.0.1:');
  }
  const control = createServer.call(http, (req, res) => {
    const reports = {};
    for (const p of projects) reports[p] = kits[p].reports();
    res.setHeader('Content-Type', 'application/json');
    res.end(JSON.stringify({ requests, reports }));
  });
  listen.call(control, 0, '127.0.0.1', () => {
    const url = `http://127.0.0.1:${control.address().port}`;
    process.stdout.write(JSON.stringify({ dsns, control: url }) + '\n');
  });
  process.stdin.on('end', () => process.exit(0));
  process.stdin.resume();
}

main().catch((e) => {
  process.stderr.write(`fake_sentry: ${e && e.stack || e}\n`);
  process.exit(1);
});
