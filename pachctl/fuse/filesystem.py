"""PFS as a FUSE filesystem (pyfuse3, in asyncio mode), over the client library.

Finished commits are read-only; files of open commits can be created,
appended to, truncated and deleted, and directories made. PFS files only
grow by appending: a write on an O_APPEND handle lands at the file's end as
it is when the handle's bytes are sent, whoever grew it; any other handle
must write on from where it started (the end, or 0 after truncating). What a
handle wrote is sent as one put-file (one atomic append) when the file is
flushed or closed; a handle's sends go one at a time, in order, and a failed
one fails every later flush of the handle, so a close that succeeds means all
the handle wrote is in the commit. Sizes fetched from pachd while the mount
was changing a file are dropped (the mount's own count is newer). Files of
open commits bypass the page cache (their bytes can change under it); reads
fetch CHUNK-sized pieces, cached (and read ahead) for finished commits, whose
content never changes. The sync client runs in worker threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import logging
import os
import stat
import tempfile
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, BinaryIO, TypeVar

import pyfuse3

from pachyderm_client import Client, FailedPreconditionError, InvalidArgumentError, NotFoundError, PachydermError
from pachctl.fuse.nodes import Inodes, Kind, Node, View, commit_dir_name, commit_id_candidates
from pachyderm_client.proto import fuse_pb2, pfs_pb2

logger = logging.getLogger(__name__)

T = TypeVar("T")
CHUNK = 4 * 1024 * 1024
CACHE_CHUNKS = 32  # 128 MiB of finished-commit data
SHORT, LONG = 1.0, 3600.0  # attribute timeouts: things that change, things that cannot


@dataclass(eq=False)
class Handle:
    node: Node
    append: bool  # O_APPEND: every write goes to the file's end, wherever the kernel puts it
    end: int  # where the next write must start (handles without O_APPEND)
    pending: BinaryIO | None = None  # written, not yet being sent
    pending_size: int = 0
    unsent: int = 0  # written, not yet in PFS: pending and being sent
    sending: asyncio.Lock = field(default_factory=asyncio.Lock)  # one send at a time, in order
    error: int | None = None  # errno of a failed send: every later flush and write reports it
    chunks: dict[int, bytes] = field(default_factory=dict)  # this handle's reads of an open commit


class PfsOperations(pyfuse3.Operations):
    """`mounts` empty: every repo and commit; else just these commits, by alias."""

    def __init__(self, client: Client, *, mounts: Sequence[fuse_pb2.CommitMount] = (), all_commits: bool = False,
                 shard: pfs_pb2.Shard | None = None) -> None:
        super().__init__()
        self._client = client
        self._mounts = {m.alias or m.commit.repo.name: m for m in mounts}
        self._all = all_commits
        self._shard = shard
        self._inodes = Inodes()
        self._handles: dict[int, Handle] = {}
        self._next_handle = 1
        self._listings: dict[int, list[tuple[bytes, Node]]] = {}
        self._cache: OrderedDict[tuple[Any, ...], asyncio.Future[bytes]] = OrderedDict()
        self._clock = 0  # counts the mount's own changes to files (Node.changed)

    # -- helpers ------------------------------------------------------------------

    async def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        except NotFoundError:
            raise pyfuse3.FUSEError(errno.ENOENT) from None
        except FailedPreconditionError:
            raise pyfuse3.FUSEError(errno.EROFS) from None
        except InvalidArgumentError:
            raise pyfuse3.FUSEError(errno.EINVAL) from None
        except PachydermError as err:
            logger.warning("pachd call failed: %s", err.message)
            raise pyfuse3.FUSEError(errno.EIO) from None

    def _node(self, inode: int) -> Node:
        node = self._inodes.get(inode)
        if node is None:
            raise pyfuse3.FUSEError(errno.ENOENT)
        return node

    def _attributes(self, node: Node) -> pyfuse3.EntryAttributes:
        attrs = pyfuse3.EntryAttributes()
        attrs.st_ino = node.inode
        if node.kind is Kind.FILE:
            attrs.st_mode = stat.S_IFREG | (0o644 if node.writable else 0o444)
            attrs.st_nlink = 1
        else:
            attrs.st_mode = stat.S_IFDIR | (0o755 if node.writable or node.kind is Kind.ROOT else 0o555)
            attrs.st_nlink = 2
        attrs.st_size = size = node.size + node.unsent
        attrs.st_blksize = 512 * 1024
        attrs.st_blocks = (size + 511) // 512
        stamp = int(node.mtime * 1e9)
        attrs.st_atime_ns = attrs.st_mtime_ns = attrs.st_ctime_ns = stamp
        attrs.st_uid, attrs.st_gid = os.getuid(), os.getgid()
        timeout = LONG if node.immutable else SHORT
        attrs.entry_timeout = attrs.attr_timeout = timeout
        return attrs

    def _child(self, parent: Node, info: pfs_pb2.FileInfo, since: int) -> Node:
        """The node of a file pachd described; `since`: the clock when the description was asked for."""
        kind = Kind.DIR if info.file_type == pfs_pb2.FILE_TYPE_DIR else Kind.FILE
        node = self._inodes.node(kind, parent.repo, parent.commit, info.file.path, _alias(parent))
        node.view, node.writable, node.immutable = parent.view, parent.writable, parent.immutable
        self._observe(node, info, since)
        return node

    def _observe(self, node: Node, info: pfs_pb2.FileInfo, since: int) -> None:
        """Takes pachd's size and time of the file, unless the mount changed the file
        since they were asked for, or is sending to it (its own count is newer)."""
        if node.changed <= since and not node.sending:
            node.size = info.size_bytes
            node.mtime = info.modified.seconds + info.modified.nanos / 1e9

    def _touch(self, node: Node) -> None:
        self._clock += 1
        node.changed = self._clock

    async def _commit_node(self, repo: str, name: str, view: View, alias: str = "") -> Node:
        """The node of a commit's root directory, `name` being a commit ID or a v1.2 directory name."""
        info = None
        for candidate in commit_id_candidates(name) if not alias else [name]:
            try:
                info = await asyncio.to_thread(self._client.inspect_commit, (repo, candidate))
                break
            except NotFoundError:
                continue
            except InvalidArgumentError:
                continue
        if info is None:
            raise pyfuse3.FUSEError(errno.ENOENT)
        node = self._inodes.node(Kind.DIR, repo, candidate, "/", alias)
        node.view = view
        node.writable = info.commit_type == pfs_pb2.COMMIT_TYPE_WRITE
        node.immutable = not node.writable and "/" in candidate
        node.size = info.size_bytes
        stamp = info.finished if info.HasField("finished") else info.started
        node.mtime = stamp.seconds + stamp.nanos / 1e9
        return node

    # -- looking around -----------------------------------------------------------

    async def lookup(self, parent_inode: int, name: bytes, ctx: pyfuse3.RequestContext) -> pyfuse3.EntryAttributes:
        parent = self._node(parent_inode)
        text = os.fsdecode(name)
        if text in (".", ".."):
            raise pyfuse3.FUSEError(errno.ENOENT)
        return self._attributes(await self._lookup(parent, text))

    async def _lookup(self, parent: Node, name: str) -> Node:
        if parent.kind is Kind.ROOT:
            if self._mounts:
                mount = self._mounts.get(name)
                if mount is None:
                    raise pyfuse3.FUSEError(errno.ENOENT)
                return await self._commit_node(mount.commit.repo.name, mount.commit.id, _view(mount), name)
            repo = await self._call(self._client.inspect_repo, name)
            node = self._inodes.node(Kind.REPO, name)
            node.mtime = repo.created.seconds
            return node
        if parent.kind is Kind.REPO:
            return await self._commit_node(parent.repo, name, View.of(self._shard))
        path = f"{parent.path.rstrip('/')}/{name}"
        view, since = parent.view, self._clock
        info = await self._call(self._client.inspect_file, (parent.repo, parent.commit), path, view.from_commit,
                                view.full_file, view.shard)
        return self._child(parent, info, since)

    async def getattr(self, inode: int, ctx: pyfuse3.RequestContext) -> pyfuse3.EntryAttributes:
        node = self._node(inode)
        if node.kind in (Kind.FILE, Kind.DIR) and node.path != "/" and not node.immutable:
            view, since = node.view, self._clock
            info = await self._call(self._client.inspect_file, (node.repo, node.commit), node.path, view.from_commit,
                                    view.full_file, view.shard)
            self._observe(node, info, since)
        return self._attributes(node)

    async def opendir(self, inode: int, ctx: pyfuse3.RequestContext) -> int:
        node = self._node(inode)
        handle = self._new_handle()
        self._listings[handle] = await self._list(node)
        return handle

    async def _list(self, node: Node) -> list[tuple[bytes, Node]]:
        if node.kind is Kind.ROOT:
            if self._mounts:
                return [(name.encode(), await self._lookup(node, name)) for name in self._mounts]
            return [(r.repo.name.encode(), self._inodes.node(Kind.REPO, r.repo.name))
                    for r in await self._call(self._client.list_repo)]
        if node.kind is Kind.REPO:
            status = pfs_pb2.ALL if self._all else pfs_pb2.NORMAL
            commits = await self._call(self._client.list_commit, [(node.repo, "")], status=status)
            branches = await self._call(self._client.list_branch, node.repo, status)
            names = [commit_dir_name(c.commit.id) for c in commits] + branches
            return [(name.encode(), await self._commit_node(node.repo, name, View.of(self._shard)))
                    for name in names]
        view, since = node.view, self._clock
        infos = await self._call(self._client.list_file, (node.repo, node.commit), node.path, view.from_commit,
                                 view.full_file, view.shard)
        return [(info.file.path.rsplit("/", 1)[1].encode(), self._child(node, info, since)) for info in infos]

    async def readdir(self, fh: int, start_id: int, token: pyfuse3.ReaddirToken) -> None:
        entries = self._listings.get(fh, [])
        for index in range(start_id, len(entries)):
            name, node = entries[index]
            if not pyfuse3.readdir_reply(token, name, self._attributes(node), index + 1):
                return

    async def releasedir(self, fh: int) -> None:
        self._listings.pop(fh, None)

    async def statfs(self, ctx: pyfuse3.RequestContext) -> pyfuse3.StatvfsData:
        data = pyfuse3.StatvfsData()
        data.f_bsize = data.f_frsize = 512 * 1024
        data.f_blocks = data.f_bfree = data.f_bavail = 1 << 30
        data.f_files = data.f_ffree = data.f_favail = 1 << 30
        data.f_namemax = 255
        return data

    # -- reading ------------------------------------------------------------------

    def _new_handle(self) -> int:
        self._next_handle += 1
        return self._next_handle

    async def open(self, inode: int, flags: int, ctx: pyfuse3.RequestContext) -> pyfuse3.FileInfo:
        node = self._node(inode)
        if node.kind is not Kind.FILE:
            raise pyfuse3.FUSEError(errno.EISDIR)
        writing = flags & (os.O_WRONLY | os.O_RDWR)
        if writing and not node.writable:
            raise pyfuse3.FUSEError(errno.EROFS)
        if writing and flags & os.O_TRUNC:
            await self._truncate(node)
        handle = self._new_handle()
        self._handles[handle] = Handle(node, bool(flags & os.O_APPEND), node.size + node.unsent)
        # Large files bypass the page cache: reads then come in the reader's own large
        # pieces rather than 128 KiB readahead requests (2x the throughput here). So
        # do files of open commits, whose bytes other handles and clients change.
        return pyfuse3.FileInfo(fh=handle, keep_cache=node.immutable, direct_io=node.writable or node.size >= CHUNK)

    async def read(self, fh: int, off: int, size: int) -> bytes:
        handle = self._handles[fh]
        await self._send(handle)
        end = min(off + size, handle.node.size) if handle.node.immutable else off + size  # else: up to what pachd has
        pieces = []
        while off < end:
            index = off // CHUNK
            chunk = await self._chunk(handle, index)
            start = off - index * CHUNK
            piece = chunk[start : start + (end - off)]
            if not piece:
                break
            pieces.append(piece)
            off += len(piece)
        return b"".join(pieces)

    async def _chunk(self, handle: Handle, index: int) -> bytes:
        node = handle.node
        if not node.immutable:
            if index not in handle.chunks:
                handle.chunks[index] = await self._fetch(node, index)
            return handle.chunks[index]
        future = self._cached(node, index)
        if (index + 1) * CHUNK < node.size:
            self._cached(node, index + 1)  # read ahead
        return await future

    def _cached(self, node: Node, index: int) -> asyncio.Future[bytes]:
        key = (node.repo, node.commit, node.path, node.view, index)
        future = self._cache.get(key)
        if future is None or (future.done() and future.exception() is not None):
            future = asyncio.ensure_future(self._fetch(node, index))
            self._cache[key] = future
            while len(self._cache) > CACHE_CHUNKS:
                self._cache.popitem(last=False)
        self._cache.move_to_end(key)
        return future

    async def _fetch(self, node: Node, index: int) -> bytes:
        view = node.view

        def read() -> bytes:
            return self._client.get_file_bytes((node.repo, node.commit), node.path, offset=index * CHUNK, size=CHUNK,
                                               from_commit=view.from_commit, full_file=view.full_file,
                                               shard=view.shard)

        return await self._call(read)

    # -- writing ------------------------------------------------------------------

    async def create(self, parent_inode: int, name: bytes, mode: int, flags: int,
                     ctx: pyfuse3.RequestContext) -> tuple[pyfuse3.FileInfo, pyfuse3.EntryAttributes]:
        parent = self._writable(parent_inode)
        path = f"{parent.path.rstrip('/')}/{os.fsdecode(name)}"
        await self._call(self._client.put_file, (parent.repo, parent.commit), path, b"")
        node = self._inodes.node(Kind.FILE, parent.repo, parent.commit, path, _alias(parent))
        node.view, node.writable, node.mtime = parent.view, True, time.time()
        if not any(h.node is node for h in self._handles.values()):
            node.size = 0  # else another handle made it (a racing creator): it knows the size
        self._touch(node)
        handle = self._new_handle()
        self._handles[handle] = Handle(node, bool(flags & os.O_APPEND), node.size + node.unsent)
        return pyfuse3.FileInfo(fh=handle, direct_io=True), self._attributes(node)

    async def write(self, fh: int, off: int, buf: bytes) -> int:
        handle = self._handles[fh]
        node = handle.node
        if not node.writable:
            raise pyfuse3.FUSEError(errno.EROFS)
        if handle.error is not None:
            raise pyfuse3.FUSEError(handle.error)
        if not handle.append and off != handle.end:
            raise pyfuse3.FUSEError(errno.EINVAL)  # PFS files only grow at the end
        if handle.pending is None:
            handle.pending = tempfile.SpooledTemporaryFile(max_size=CHUNK)  # type: ignore[assignment]
        assert handle.pending is not None
        handle.pending.write(buf)
        handle.pending_size += len(buf)
        handle.unsent += len(buf)
        handle.end += len(buf)
        node.unsent += len(buf)
        return len(buf)

    async def _send(self, handle: Handle) -> None:
        """Appends what the handle wrote to the file in PFS, after its earlier sends.

        Writes made meanwhile start a new pending buffer, sent by the next flush."""
        async with handle.sending:
            if handle.error is not None:
                raise pyfuse3.FUSEError(handle.error)
            if handle.pending is None:
                return
            pending, size = handle.pending, handle.pending_size
            handle.pending, handle.pending_size = None, 0
            node = handle.node
            node.sending += 1
            self._touch(node)
            try:
                pending.seek(0)
                await self._call(self._client.put_file, (node.repo, node.commit), node.path, pending)
            except pyfuse3.FUSEError as err:
                handle.error = err.errno
                raise
            finally:
                pending.close()
                node.sending -= 1
                handle.unsent -= size
                node.unsent -= size
                self._touch(node)
            node.size += size
            node.mtime = time.time()
            handle.chunks = {}

    async def flush(self, fh: int) -> None:
        await self._send(self._handles[fh])

    async def fsync(self, fh: int, datasync: bool) -> None:
        await self._send(self._handles[fh])

    async def release(self, fh: int) -> None:
        handle = self._handles.get(fh)
        if handle is not None:
            try:
                await self._send(handle)
            finally:
                del self._handles[fh]

    async def setattr(self, inode: int, attr: pyfuse3.EntryAttributes, fields: pyfuse3.SetattrFields, fh: int | None,
                      ctx: pyfuse3.RequestContext) -> pyfuse3.EntryAttributes:
        node = self._node(inode)
        if fields.update_size:
            if attr.st_size == 0 and node.kind is Kind.FILE:
                if not node.writable:
                    raise pyfuse3.FUSEError(errno.EROFS)
                await self._truncate(node)
            elif attr.st_size != node.size + node.unsent:
                raise pyfuse3.FUSEError(errno.EINVAL)  # only emptying a file can be expressed in PFS
        return self._attributes(node)  # times and modes are PFS's own: changing them is a no-op

    async def _truncate(self, node: Node) -> None:
        """Empties the file; what its handles wrote before and had not sent is dropped."""
        handles = [h for h in self._handles.values() if h.node is node]
        async with contextlib.AsyncExitStack() as stack:
            for handle in handles:  # sends in flight land first; the same order in every truncate
                await stack.enter_async_context(handle.sending)
            self._touch(node)
            try:
                await self._call(self._client.delete_file, (node.repo, node.commit), node.path)
                await self._call(self._client.put_file, (node.repo, node.commit), node.path, b"")
            finally:
                self._touch(node)
            node.size = 0
            for handle in handles:
                if handle.pending is not None:
                    handle.pending.close()
                node.unsent -= handle.unsent
                handle.pending, handle.pending_size, handle.unsent, handle.end, handle.chunks = None, 0, 0, 0, {}

    def _writable(self, inode: int) -> Node:
        node = self._node(inode)
        if node.kind is not Kind.DIR or not node.writable:
            raise pyfuse3.FUSEError(errno.EROFS if node.kind is Kind.DIR else errno.EACCES)
        return node

    async def mkdir(self, parent_inode: int, name: bytes, mode: int,
                    ctx: pyfuse3.RequestContext) -> pyfuse3.EntryAttributes:
        parent = self._writable(parent_inode)
        path = f"{parent.path.rstrip('/')}/{os.fsdecode(name)}"
        await self._call(self._client.make_directory, (parent.repo, parent.commit), path)
        node = self._inodes.node(Kind.DIR, parent.repo, parent.commit, path, _alias(parent))
        node.view, node.writable, node.mtime = parent.view, True, time.time()
        return self._attributes(node)

    async def unlink(self, parent_inode: int, name: bytes, ctx: pyfuse3.RequestContext) -> None:
        await self._remove(parent_inode, name, directory=False)

    async def rmdir(self, parent_inode: int, name: bytes, ctx: pyfuse3.RequestContext) -> None:
        await self._remove(parent_inode, name, directory=True)

    async def _remove(self, parent_inode: int, name: bytes, *, directory: bool) -> None:
        parent = self._writable(parent_inode)
        node = await self._lookup(parent, os.fsdecode(name))
        if directory and node.kind is not Kind.DIR:
            raise pyfuse3.FUSEError(errno.ENOTDIR)
        if not directory and node.kind is Kind.DIR:
            raise pyfuse3.FUSEError(errno.EISDIR)
        if directory and await self._list(node):
            raise pyfuse3.FUSEError(errno.ENOTEMPTY)
        await self._call(self._client.delete_file, (parent.repo, parent.commit), node.path)
        self._inodes.forget(node)

    async def rename(self, parent_inode_old: int, name_old: bytes, parent_inode_new: int, name_new: bytes,
                     flags: int, ctx: pyfuse3.RequestContext) -> None:
        raise pyfuse3.FUSEError(errno.EXDEV)  # mv then copies and deletes


def _alias(node: Node) -> str:
    return f"{node.repo}/{node.commit}"


def _view(mount: fuse_pb2.CommitMount) -> View:
    from_commit = mount.diff_method.from_commit.id if mount.HasField("diff_method") else ""
    full_file = mount.full_file or (mount.HasField("diff_method") and mount.diff_method.full_file)
    return View.of(mount.shard if mount.HasField("shard") else None, from_commit, full_file)


def _no_crash(operation: Callable[..., Any]) -> Callable[..., Any]:
    """A bug in an operation answers EIO instead of ending the filesystem's main loop
    (which would leave every process using the mount hanging)."""

    @functools.wraps(operation)
    async def guarded(*args: Any, **kwargs: Any) -> Any:
        try:
            return await operation(*args, **kwargs)
        except pyfuse3.FUSEError:
            raise
        except Exception:
            logger.exception("FUSE %s failed", operation.__name__)
            raise pyfuse3.FUSEError(errno.EIO) from None

    return guarded


for _name in ("lookup", "getattr", "opendir", "readdir", "releasedir", "statfs", "open", "read", "create", "write",
              "flush", "fsync", "release", "setattr", "mkdir", "unlink", "rmdir"):
    setattr(PfsOperations, _name, _no_crash(getattr(PfsOperations, _name)))

