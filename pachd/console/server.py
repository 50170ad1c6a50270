"""The web console: a read-only view of pipelines, data and jobs, served by pachd.

It runs in pachd's own event loop (aiohttp) and reads the PFS and PPS layers
in-process. Pages are static files; their data comes from the JSON routes
below, and two server-sent event streams keep them live: /api/events (a
change to repos, commits, pipelines or jobs) and /api/jobs/{id}/logs (a
job's log lines as its pods print them).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import mimetypes
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
from aiohttp import web

from pachd import validate
from pachd.console import views
from pachd.errors import PachError
from pachd.pfs import Pfs
from pachd.pps import Pps

logger = logging.getLogger(__name__)

STATIC = Path(__file__).with_name("static")
COOKIE = "pach_console_token"
HEARTBEAT = 15.0
"""Seconds between keep-alive comments on an idle event stream."""
COALESCE = 0.1
"""Changes arriving this close together are announced once."""

_HTTP_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.FAILED_PRECONDITION: 409,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 413,
    grpc.StatusCode.UNAVAILABLE: 503,
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Console:
    """The console's HTTP server; start() to serve, stop() before pachd closes its layers."""

    def __init__(self, *, pfs: Pfs, pps: Pps, token: str | None = None) -> None:
        self._pfs = pfs
        self._pps = pps
        self._token = token
        self._closing = asyncio.Event()
        self._runner: web.AppRunner | None = None

    async def start(self, host: str, port: int) -> int:
        """Serves on host:port; returns the bound port. A busy port raises OSError."""
        app = web.Application(middlewares=[self._errors, self._auth])
        app.add_routes([
            web.get("/", self._index),
            web.static("/static", STATIC),
            web.get("/api/session", self._session),
            web.post("/api/login", self._login),
            web.get("/api/dag", self._json(lambda r: views.dag(self._pfs, self._pps))),
            web.get("/api/repos/{repo}", self._json(lambda r: views.repo(self._pfs, _repo(r)))),
            web.get("/api/files", self._json(lambda r: views.files(self._pfs, _repo(r), _commit(r), _path(r)))),
            web.get("/api/file", self._file),
            web.get("/api/jobs", self._json(lambda r: views.jobs(self._pps, r.query.get("pipeline", "")))),
            web.get("/api/jobs/{job}", self._json(lambda r: views.job(self._pps, r.match_info["job"]))),
            web.get("/api/jobs/{job}/logs", self._logs),
            web.get("/api/events", self._events),
        ])
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, reuse_port=False)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        return int(sockets[0].getsockname()[1]) if sockets else port

    async def stop(self) -> None:
        self._closing.set()  # ends the event streams, so the runner need not wait for them
        if self._runner is not None:
            await self._runner.cleanup()

    # -- cross-cutting ---------------------------------------------------------

    @web.middleware
    async def _errors(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except PachError as err:
            return web.json_response({"error": err.message, "code": err.code.name},
                                     status=_HTTP_STATUS.get(err.code, 500))
        except web.HTTPException:
            raise
        except Exception as err:
            logger.exception("console %s %s failed unexpectedly", request.method, request.path)
            return web.json_response({"error": f"internal error: {err!r}", "code": "INTERNAL"}, status=500)

    @web.middleware
    async def _auth(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        open_paths = ("/api/session", "/api/login")
        if self._token is None or not request.path.startswith("/api/") or request.path in open_paths:
            return await handler(request)
        if not self._authenticated(request):
            return web.json_response({"error": "this pachd needs its token: sign in", "code": "UNAUTHENTICATED"},
                                     status=401)
        return await handler(request)

    def _authenticated(self, request: web.Request) -> bool:
        if self._token is None:
            return True
        given = request.cookies.get(COOKIE, "")
        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            given = header[len("Bearer "):]
        return hmac.compare_digest(given.encode(), self._token.encode())

    def _json(self, view: Callable[[web.Request], Awaitable[Any]]) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            return web.json_response(await view(request))

        return handle

    # -- pages and routes ------------------------------------------------------

    async def _index(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC / "index.html")

    async def _session(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"token_required": self._token is not None,
                                  "authenticated": self._authenticated(request)})

    async def _login(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        token = str(body.get("token", "")) if isinstance(body, dict) else ""
        if self._token is None or not hmac.compare_digest(token.encode(), self._token.encode()):
            return web.json_response({"error": "wrong token", "code": "UNAUTHENTICATED"}, status=401)
        response = web.json_response({"authenticated": True})
        response.set_cookie(COOKIE, token, httponly=True, samesite="Strict")
        return response

    async def _file(self, request: web.Request) -> web.StreamResponse:
        """A file's content, streamed; `download=1` asks the browser to save it."""
        repo, commit, path = _repo(request), _commit(request), _path(request)
        chunks = self._pfs.files.get(repo, commit, path)
        first = await anext(chunks, b"")  # errors (not found, a directory) before any header is sent
        kind = mimetypes.guess_type(path)[0] or "application/octet-stream"
        if kind.startswith("text/") or kind == "application/octet-stream" and _looks_like_text(first):
            kind = "text/plain; charset=utf-8"
        response = web.StreamResponse(headers={"Content-Type": kind, "X-Content-Type-Options": "nosniff"})
        if request.query.get("download"):
            name = path.rsplit("/", 1)[-1] or "file"
            response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
        await response.prepare(request)
        await response.write(first)
        async for chunk in chunks:
            await response.write(chunk)
        await response.write_eof()
        return response

    async def _logs(self, request: web.Request) -> web.StreamResponse:
        job = request.match_info["job"]
        await self._pps.jobs.get(job)  # a missing job is a 404, not an empty stream

        async def lines() -> AsyncIterator[str]:
            async for line in self._pps.follow_logs(job):
                yield json.dumps({"line": line.decode(errors="replace").rstrip("\n")})
            yield json.dumps({"end": True})

        return await self._stream(request, lines())

    async def _events(self, request: web.Request) -> web.StreamResponse:
        return await self._stream(request, self._changes())

    async def _changes(self) -> AsyncIterator[str]:
        """One message per burst of changes, naming what changed."""
        queue: asyncio.Queue[str] = asyncio.Queue()

        async def pump(source: AsyncIterator[str]) -> None:
            async for kind in source:
                queue.put_nowait(kind)

        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(pump(self._pfs.changes())), group.create_task(pump(self._pps.changes()))]
            try:
                while True:
                    kinds = {await queue.get()}
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(COALESCE):
                            while True:
                                kinds.add(await queue.get())
                    yield json.dumps({"changed": sorted(kinds)})
            finally:
                for task in tasks:
                    task.cancel()

    async def _stream(self, request: web.Request, messages: AsyncIterator[str]) -> web.StreamResponse:
        """Sends `messages` as server-sent events until they end, the client leaves or pachd stops."""
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)
        await response.write(b": connected\n\n")
        pending: asyncio.Task[str] | None = None
        closing = asyncio.ensure_future(self._closing.wait())
        try:
            while True:
                pending = asyncio.ensure_future(anext(messages))
                done, _ = await asyncio.wait([pending, closing], timeout=HEARTBEAT,
                                             return_when=asyncio.FIRST_COMPLETED)
                if closing in done:
                    break
                if pending not in done:
                    await response.write(b": keep-alive\n\n")
                    done, _ = await asyncio.wait([pending, closing], return_when=asyncio.FIRST_COMPLETED)
                    if closing in done:
                        break
                try:
                    message = pending.result()
                except StopAsyncIteration:
                    pending = None
                    break
                pending = None
                await response.write(f"data: {message}\n\n".encode())
        except (ConnectionResetError, asyncio.CancelledError):
            pass  # the browser went away
        finally:
            for task in (pending, closing):
                if task is not None:
                    task.cancel()
            await messages.aclose()  # type: ignore[attr-defined]
        return response


def _repo(request: web.Request) -> str:
    return validate.repo_name(request.match_info.get("repo") or request.query.get("repo", ""))


def _commit(request: web.Request) -> str:
    commit = request.query.get("commit", "")
    validate.commit_id(commit)
    return commit


def _path(request: web.Request) -> str:
    return validate.file_path(request.query.get("path", "/") or "/")


def _looks_like_text(data: bytes) -> bool:
    try:
        data[:4096].decode()
    except UnicodeDecodeError as err:
        return err.start > 4090  # cut in the middle of a character at the end is still text
    return b"\x00" not in data[:4096]
