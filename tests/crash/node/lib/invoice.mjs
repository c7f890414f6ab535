// An ES module: its frames print as file:// URLs.
export function invoiceTotal(invoice) {
  return invoice.lines.reduce((sum, line) => sum + line.amount, 0);
}

export function render(invoice) {
  return `total: ${invoiceTotal(invoice)}`;
}
