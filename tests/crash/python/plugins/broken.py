"""A module with a syntax error, as a bad deploy ships one: importing it crashes the app."""


def discount(order):
    return order.total * (1 - order.rate
