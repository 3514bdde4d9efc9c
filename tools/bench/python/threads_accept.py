#!/usr/bin/env python3
"""N Python threads that each accept on the same listener: no queue."""

import threading

import hello


def work(server):
    while True:
        hello.serve(hello.accept(server))


server = hello.listen()
threads = [threading.Thread(target=work, args=(server,), daemon=True) for _ in range(hello.workers())]
for t in threads:
    t.start()
hello.announce(server)
for t in threads:
    t.join()
