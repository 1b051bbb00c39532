"""The request handler of examples/threaded_server.py and the sessions it keeps: the code that
server reloads on SIGUSR1 without restarting.  Edit a method, then ``kill -USR1 PID``."""

import socketserver


class Session:
    """One client's state, kept by the server between requests."""

    def __init__(self, name):
        self.name = name
        self.visits = 0

    def greet(self):
        self.visits += 1
        return f"hello {self.name} (visit {self.visits})"


class Handler(socketserver.StreamRequestHandler):
    """One line in (a name), one line out (the greeting of that name's session)."""

    def handle(self):
        name = self.rfile.readline().strip().decode()
        session = self.server.sessions.setdefault(name, Session(name))
        self.wfile.write(f"{session.greet()}\n".encode())
