// The toy shop's order code: app code whose frames the traces show.
'use strict';

const pricing = require('pricing');

const PRICES = { apple: 3, pear: 4 };

function customerName(order) {
  return order.customer.name;
}

function describe(order) {
  return `${customerName(order)} bought ${order.items.length} items`;
}

async function charge(order) {
  await new Promise((resolve) => setImmediate(resolve));
  throw new Error(`payment declined for order ${order.id}`);
}

async function checkout(order) {
  await charge(order);
}

function price(item) {
  if (!(item in PRICES)) throw new RangeError(`no price for ${item}`);
  return PRICES[item];
}

function total(order) {
  try {
    return order.items.reduce((sum, i) => sum + price(i), 0);
  } catch (err) {
    throw new Error(`cannot total order ${order.id}`, { cause: err });
  }
}

class PaymentError extends Error {
  constructor(message, code) {
    super(message);
    this.name = 'PaymentError';
    this.code = code;
  }
}

function authorize(order) {
  throw new PaymentError(`card declined for order ${order.id}`, 'E_DECLINED');
}

function settleLater(order) {
  setTimeout(function settle() {
    order.lines.forEach((l) => l.settle());
  }, 1);
}

function quote(item) {
  pricing.compute(PRICES, item, (err, price) => {
    if (err) throw err;
    return price;
  });
}

module.exports = { describe, checkout, total, quote, authorize, settleLater };
