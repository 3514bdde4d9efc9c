#!/usr/bin/env python3
"""The linear model in Python: one connection at a time."""

import hello

server = hello.listen()
hello.announce(server)
while True:
    hello.serve(hello.accept(server))
