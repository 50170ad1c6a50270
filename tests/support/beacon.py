"""How a test and the pods of its pipelines signal each other.

Pods are confined: they see neither the test's files nor its /tmp, but they
share the host's network (pachd's default). So a test runs a Beacon, a tiny
line server on a loopback port, and a pipeline's script talks to it with
`python3` (the system's, which pods see):

    beacon.command("reached")   the pod says it got here; the test waits with beacon.wait_hits("reached")
    beacon.command("gate")      the pod blocks until the test calls beacon.open("gate")
    beacon.command("first")     prints 1 to the first pod that asks, 0 to every later one (across attempts)
"""

from __future__ import annotations

import socket
import threading
from collections import Counter

from tests.support.wait import wait_until

_CLIENT = ("import socket, sys, time\n"
           "while True:\n"
           "    try:\n"
           "        s = socket.create_connection(('{host}', {port}), timeout=5); break\n"
           "    except OSError: time.sleep(0.1)\n"
           "s.settimeout(None); s.sendall(sys.argv[1].encode() + b'\\n')\n"
           "print(s.makefile().readline().strip())\n")


class Beacon:
    def __init__(self, host: str = "127.0.0.1") -> None:
        self._server = socket.create_server((host, 0))
        self.host = host
        self.port = int(self._server.getsockname()[1])
        self._hits: Counter[str] = Counter()
        self._opened: set[str] = set()
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def command(self, name: str) -> str:
        """A shell command (for a pipeline's script) that sends `name` and prints the answer."""
        program = _CLIENT.format(host=self.host, port=self.port).replace("'", "'\"'\"'")
        return f"python3 -c '{program}' {name}"

    def open(self, name: str) -> None:
        with self._changed:
            self._opened.add(name)
            self._changed.notify_all()

    def hits(self, name: str) -> int:
        with self._changed:
            return self._hits[name]

    def wait_hits(self, name: str, count: int = 1, timeout: float = 120.0) -> None:
        wait_until(lambda: self.hits(name) >= count, timeout=timeout, what=f"{count} pod(s) to send {name!r}")

    def close(self) -> None:
        self._server.close()

    def __enter__(self) -> Beacon:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(connection,), daemon=True).start()

    def _answer(self, connection: socket.socket) -> None:
        with connection:
            name = connection.makefile().readline().strip()
            with self._changed:
                self._hits[name] += 1
                first = self._hits[name] == 1
                self._changed.notify_all()
                if name == "first" or name.startswith("first-"):
                    answer = "1" if first else "0"
                else:
                    while name.startswith("gate") and name not in self._opened:
                        self._changed.wait(timeout=1.0)
                    answer = "ok"
            try:
                connection.sendall(answer.encode() + b"\n")
            except OSError:
                pass  # the pod went away (killed while it waited)
