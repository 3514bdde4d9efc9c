#!/usr/bin/env python3
"""Pre-forked worker processes in Python, sharing one listener. The parent
waits; on SIGTERM it stops its workers and leaves none behind."""

import os
import signal
import sys

import hello

server = hello.listen()
children = []
for _ in range(hello.workers()):
    pid = os.fork()
    if pid == 0:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        while True:
            hello.serve(hello.accept(server))
    children.append(pid)


def stop(signum, frame):
    for pid in children:
        os.kill(pid, signal.SIGTERM)
    for pid in children:
        os.waitpid(pid, 0)
    sys.exit(0)


signal.signal(signal.SIGTERM, stop)
signal.signal(signal.SIGINT, stop)
hello.announce(server)
while True:
    signal.pause()
