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

function quote(item) {
  pricing.compute(PRICES, item, (err, price) => {
    if (err) throw err;
    return price;
  });
}

module.exports = { describe, checkout, total, quote };
