"""What the Python reference servers share: the book's response, and one
connection served the blocking way. These servers exist to measure the
post's models in the post's language on the book's machine; they follow
the same contract as the Rust listings (address as first argument, one
`listening on` line) but are not listings of the book."""

import socket
import sys

RESPONSE = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 11\r\n\r\nHello world"
TOO_LARGE = b"HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
HEAD_LIMIT = 8 * 1024
HEAD_TIMEOUT = 5.0


def listen():
    """Binds the first argument (default 127.0.0.1:9527) with a backlog of 1024."""
    host, _, port = (sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:9527").rpartition(":")
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((host, int(port)))
    server.listen(1024)
    return server


def announce(server):
    host, port = server.getsockname()
    print(f"listening on http://{host}:{port}", flush=True)


def workers():
    """The second argument, or one per CPU, as the Rust listings do."""
    import os
    return int(sys.argv[2]) if len(sys.argv) > 2 else len(os.sched_getaffinity(0))


def serve(conn):
    """Reads a whole request head (bounded), answers, closes."""
    try:
        conn.settimeout(HEAD_TIMEOUT)
        head = b""
        while b"\r\n\r\n" not in head:
            if len(head) >= HEAD_LIMIT:
                conn.sendall(TOO_LARGE)
                return
            chunk = conn.recv(HEAD_LIMIT - len(head))
            if not chunk:
                return
            head += chunk
        conn.sendall(RESPONSE)
    except OSError:
        pass
    finally:
        conn.close()


def accept(server):
    """The next connection; errors concern one client, or pass."""
    import time
    while True:
        try:
            return server.accept()[0]
        except (ConnectionAbortedError, InterruptedError):
            pass
        except OSError:
            time.sleep(0.01)
