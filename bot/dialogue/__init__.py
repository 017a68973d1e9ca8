"""One chat turn: routing, products, orders, the grounded reply, and the service that runs
turns for every channel."""
