"""put-file with a URL: pachd fetches for no one what they could not reach themselves,
and fetches that hang never starve file I/O."""

from __future__ import annotations

import http.server
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from pachyderm_client import Client, PachydermError
from pachyderm_client.proto import pfs_pb2, pfs_pb2_grpc
from tests.support.pachd import PachdProcess
from tests.support.wait import wait_until

SECRET = b"loopback-only-secret\n"


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        port = self.server.server_address[1]
        targets = {"/to-loopback": f"http://127.0.0.1:{port}/secret", "/to-ftp": "ftp://127.0.0.1/secret",
                   "/to-secret": "/secret"}
        if self.path in targets:
            self.send_response(302)
            self.send_header("Location", targets[self.path])
            self.end_headers()
            return
        status, body = (200, SECRET) if self.path == "/secret" else (500, SECRET)
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def web_port() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def _pachd(tmp_path: Path, *allow: str) -> PachdProcess:
    args = ["--url-allow", ",".join(allow)] if allow else []
    return PachdProcess(tmp_path / "data", extra_args=args).start()


def _put(client: Client, url: str) -> PachydermError | None:
    with client.commit("data") as c:
        try:
            client.put_file_url(("data", c.id), "fetched", url)
        except PachydermError as err:
            return err
    return None


def test_loopback_is_refused_by_default(tmp_path: Path, web_port: int) -> None:
    server = _pachd(tmp_path)
    try:
        with Client(server.address) as client:
            client.create_repo("data")
            for url in (f"http://127.0.0.1:{web_port}/secret", f"http://localhost:{web_port}/secret",
                        f"http://[::ffff:127.0.0.1]:{web_port}/secret", "http://169.254.169.254/latest/meta-data/",
                        "http://10.0.0.1/", "http://192.168.1.1/"):
                err = _put(client, url)
                assert err is not None and err.code == grpc.StatusCode.PERMISSION_DENIED, url
                assert SECRET.strip().decode() not in str(err)
            assert client.list_file(("data", "master"), "/") == []  # nothing was stored
    finally:
        server.stop()


def test_a_redirect_to_loopback_is_refused(tmp_path: Path, web_port: int) -> None:
    server = _pachd(tmp_path, "localhost")  # the host name is allowed, 127.0.0.1 is not
    try:
        with Client(server.address) as client:
            client.create_repo("data")
            err = _put(client, f"http://localhost:{web_port}/to-loopback")
            assert err is not None and err.code == grpc.StatusCode.PERMISSION_DENIED
            err = _put(client, f"http://localhost:{web_port}/to-ftp")
            assert err is not None and err.code == grpc.StatusCode.INVALID_ARGUMENT
            assert _put(client, f"http://localhost:{web_port}/to-secret") is None  # same host: followed
    finally:
        server.stop()


def test_the_allow_list_opens_chosen_networks(tmp_path: Path, web_port: int) -> None:
    server = _pachd(tmp_path, "127.0.0.0/8")
    try:
        with Client(server.address) as client:
            client.create_repo("data")
            assert _put(client, f"http://127.0.0.1:{web_port}/to-secret") is None
            assert client.get_file_bytes(("data", "master"), "fetched") == SECRET
            err = _put(client, f"http://127.0.0.1:{web_port}/error")
            assert err is not None and err.code == grpc.StatusCode.UNAVAILABLE
            assert SECRET.strip().decode() not in str(err)  # an answer's body is never echoed
    finally:
        server.stop()


class _Silent:
    """A TCP server that accepts connections and never answers them."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.port = self.listener.getsockname()[1]
        self.held: list[socket.socket] = []
        self.released = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            if self.released.is_set():
                conn.close()
            else:
                self.held.append(conn)

    def release(self) -> None:
        self.released.set()
        for conn in self.held:
            conn.close()
        self.listener.close()


def test_hanging_fetches_do_not_starve_file_io(tmp_path: Path) -> None:
    silent = _Silent()
    server = _pachd(tmp_path, "127.0.0.1")
    latencies: dict[str, list[float]] = {"before": [], "during": []}
    try:
        with Client(server.address) as client:
            client.create_repo("data")
            with client.commit("data") as c:
                client.put_file(("data", c.id), "f", b"x" * 1_000_000)
            stub = pfs_pb2_grpc.APIStub(grpc.insecure_channel(server.address))
            client.create_repo("hang")  # its own repo: data's commits never wait for this open one
            open_commit = client.start_commit("hang")

            def hang(n: int) -> None:
                request = pfs_pb2.PutFileRequest(file=pfs_pb2.File(commit=open_commit, path=f"u{n}"),
                                                 url=f"http://127.0.0.1:{silent.port}/never")
                try:
                    stub.PutFile(iter([request]), timeout=300)
                except grpc.RpcError:
                    pass

            def read(phase: str) -> None:
                start = time.monotonic()
                assert len(client.get_file_bytes(("data", c.id), "f")) == 1_000_000
                with client.commit("data") as other:
                    client.put_file(("data", other.id), "g", b"y\n")
                latencies[phase].append(time.monotonic() - start)

            for _ in range(5):
                read("before")
            fetches = [threading.Thread(target=hang, args=(n,), daemon=True) for n in range(50)]
            for thread in fetches:
                thread.start()
            wait_until(lambda: len(silent.held) >= 10, what="pachd's fetches to hang")
            for _ in range(5):
                read("during")  # each within the client's default deadline, never waiting for a fetch
            assert len(silent.held) >= 10 and not silent.released.is_set()  # they were still hanging
            print(f"get-file + put-file latency: before {max(latencies['before']):.3f}s, "
                  f"during 50 hanging fetches {max(latencies['during']):.3f}s")
            silent.release()
            for thread in fetches:
                thread.join(timeout=120)
            assert not any(thread.is_alive() for thread in fetches)
    finally:
        silent.release()
        server.stop()
