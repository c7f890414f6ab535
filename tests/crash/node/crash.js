// A small real Node program that crashes (the crash assembler's oracle, issue 11).
//
//   NODE_PATH=$BUILD/npm/node_modules SENTRY_OUT=event.jsonl node crash.js SCENARIO
//
// The official SDK (@sentry/node from the npm registry) captures the error in-process;
// its beforeSend appends the event's JSON to $SENTRY_OUT and drops it (no network).
// The error is left uncaught, so Node's own handler prints it on stderr exactly as a dyno
// prints it (source line, caret, stack, "[cause]", "Node.js vN"). The SDK is hooked in
// with uncaughtExceptionMonitor (it observes without replacing Node's handler, and sees
// unhandled rejections too, which Node 15+ raises as uncaught exceptions).
'use strict';

const fs = require('fs');
const Sentry = require('@sentry/node');
const orders = require('./lib/orders');

Sentry.init({
  dsn: 'https://public@sentry.invalid/1',
  // Only what shapes the exception: the stack parser runs anyway; linked errors walks
  // `cause`. The default integrations that read files or hook the process are left out
  // so the capture completes synchronously before Node's handler exits the process.
  defaultIntegrations: false,
  integrations: [Sentry.linkedErrorsIntegration()],
  beforeSend(event) {
    fs.appendFileSync(process.env.SENTRY_OUT, JSON.stringify(event) + '\n');
    return null;
  },
});

process.on('uncaughtExceptionMonitor', (err) => {
  Sentry.captureException(err, { mechanism: { type: 'onuncaughtexception', handled: false } });
});

function main(scenario) {
  switch (scenario) {
    case 'typeerror':
      return orders.describe({ id: 7, items: [] });
    case 'async':
      return orders.checkout({ id: 8, items: ['apple'] });
    case 'cause':
      return orders.total({ id: 9, items: ['apple', 'kiwi'] });
    case 'node_modules':
      return orders.quote('durian');
    case 'custom':
      return orders.authorize({ id: 10 });
    case 'timer':
      return orders.settleLater({ id: 11 });
    case 'logged':
      // An Express-style error handler: the app logs the error and carries on.
      try {
        orders.total({ id: 13, items: ['pear', 'yuzu'] });
      } catch (err) {
        console.error(err);
        Sentry.captureException(err);
      }
      console.log('GET /health 200 3ms');
      return undefined;
    case 'multiline':
      throw new Error('invalid order:\n  kiwi: no price\n  lime: no price');
    case 'esm':
      return import('./lib/invoice.mjs').then((m) => m.render({ id: 12 }));
    default:
      process.stderr.write(`unknown scenario ${scenario}\n`);
      process.exit(2);
  }
}

main(process.argv[2]);
