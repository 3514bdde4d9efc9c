#!/usr/bin/env python3
"""The post's threaded model in Python: the main thread accepts and puts
each connection in a queue; N worker threads take them out and serve."""

import queue
import threading

import hello


def work(jobs):
    while True:
        hello.serve(jobs.get())


server = hello.listen()
jobs = queue.Queue(maxsize=hello.workers())
for _ in range(hello.workers()):
    threading.Thread(target=work, args=(jobs,), daemon=True).start()
hello.announce(server)
while True:
    jobs.put(hello.accept(server))
