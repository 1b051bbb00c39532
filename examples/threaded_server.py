"""A threaded TCP server that reloads its handler module on SIGUSR1, as many servers do, and
keeps what the old code made.

    python examples/threaded_server.py &             # serves on 127.0.0.1:8765 (--port N)
    python examples/threaded_server.py --ask alice   # be a client: one request, print the answer
    kill -USR1 PID                                   # reload server_handlers.py
    reloadscope report PID                           # what the reload left behind, who holds it
    reloadscope fix PID                              # the repair plan (changes nothing)
    reloadscope fix PID --apply                      # carry it out: requests get the new code

The handler class and the sessions live in server_handlers.py, beside this file.  After a reload
the server still holds the old handler class (``server.RequestHandlerClass``), and the sessions
it keeps are instances of the old ``Session``: every request still runs the old code.
Ctrl-C or SIGTERM ends it.
"""

import argparse
import importlib
import os
import signal
import socket
import socketserver
import sys
import threading

import server_handlers


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def ask(port: int, name: str) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
        conn.sendall(f"{name}\n".encode())
        return conn.makefile().readline().strip()


def reload_handlers(*_: object) -> None:
    importlib.reload(server_handlers)  # the server keeps its RequestHandlerClass: the old one
    print("reloaded server_handlers", flush=True)


parser = argparse.ArgumentParser(description="A threaded server that reloads its handlers.")
parser.add_argument("--port", type=int, default=8765, help="0: any free port")
parser.add_argument("--ask", metavar="NAME", help="be the client: send NAME, print the answer")
args = parser.parse_args()
if args.ask:
    print(ask(args.port, args.ask))
    sys.exit()

SESSIONS = {}  # name -> server_handlers.Session, kept between requests
server = Server(("127.0.0.1", args.port), server_handlers.Handler)
server.sessions = SESSIONS
signal.signal(signal.SIGUSR1, reload_handlers)
signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
host, port = server.server_address
pid = os.getpid()
print(f"threaded server {pid} on {host}:{port}; kill -USR1 {pid} reloads its handlers", flush=True)
try:
    server.serve_forever()
except KeyboardInterrupt:
    pass
finally:
    server.server_close()
