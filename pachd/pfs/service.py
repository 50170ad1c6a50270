"""The PFS gRPC services (pfs.API and pfs.BlockAPI): thin translations.

Each method validates and unpacks its request (messages.py), makes one
domain call, and builds the reply. Errors are PachErrors, turned into gRPC
statuses by the interceptor.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import cast

import grpc
from google.protobuf import empty_pb2, wrappers_pb2

from pachd import validate
from pachd.errors import InvalidArgument
from pachd.pfs import Pfs, blocks, messages, wire
from pachd.pfs.files import FileHeader, PutItem
from pachd.pfs.records import FileKind
from pachyderm_client.proto import pfs_pb2, pfs_pb2_grpc

Context = grpc.aio.ServicerContext[object, object]
EMPTY = empty_pb2.Empty()


class PfsService(pfs_pb2_grpc.APIServicer):
    def __init__(self, pfs: Pfs) -> None:
        self._pfs = pfs

    # -- repos ----------------------------------------------------------------

    async def CreateRepo(self, request: pfs_pb2.CreateRepoRequest, context: Context) -> empty_pb2.Empty:
        provenance = [messages.repo_name(r) for r in request.provenance]
        await self._pfs.repos.create(messages.repo_name(request.repo), provenance)
        return EMPTY

    async def InspectRepo(self, request: pfs_pb2.InspectRepoRequest, context: Context) -> pfs_pb2.RepoInfo:
        return messages.repo_info(await self._pfs.repos.inspect(messages.repo_name(request.repo)))

    async def ListRepo(self, request: pfs_pb2.ListRepoRequest, context: Context) -> pfs_pb2.RepoInfos:
        records = await self._pfs.repos.list([messages.repo_name(r) for r in request.provenance])
        return pfs_pb2.RepoInfos(repo_info=[messages.repo_info(r) for r in records])

    async def DeleteRepo(self, request: pfs_pb2.DeleteRepoRequest, context: Context) -> empty_pb2.Empty:
        await self._pfs.repos.delete(messages.repo_name(request.repo), force=request.force)
        return EMPTY

    # -- commits --------------------------------------------------------------

    async def StartCommit(self, request: pfs_pb2.StartCommitRequest, context: Context) -> pfs_pb2.Commit:
        repo, parent = messages.commit_ref(request.parent)
        provenance = [messages.commit_ref(c) for c in request.provenance]
        record = await self._pfs.commits.start(repo, parent, provenance)
        return messages.commit(repo, record.id)

    async def ForkCommit(self, request: pfs_pb2.ForkCommitRequest, context: Context) -> pfs_pb2.Commit:
        repo, parent = messages.commit_ref(request.parent)
        provenance = [messages.commit_ref(c) for c in request.provenance]
        record = await self._pfs.commits.fork(repo, parent, request.branch, provenance)
        return messages.commit(repo, record.id)

    async def FinishCommit(self, request: pfs_pb2.FinishCommitRequest, context: Context) -> empty_pb2.Empty:
        await self._pfs.commits.finish(*messages.commit_ref(request.commit), cancel=request.cancel)
        return EMPTY

    async def ArchiveCommit(self, request: pfs_pb2.ArchiveCommitRequest, context: Context) -> empty_pb2.Empty:
        await self._pfs.commits.archive([messages.commit_ref(c) for c in request.commits])
        return EMPTY

    async def InspectCommit(self, request: pfs_pb2.InspectCommitRequest, context: Context) -> pfs_pb2.CommitInfo:
        return messages.commit_info(await self._pfs.commits.inspect(*messages.commit_ref(request.commit)))

    async def ListCommit(self, request: pfs_pb2.ListCommitRequest, context: Context) -> pfs_pb2.CommitInfos:
        records = await self._pfs.commits.list(
            [messages.commit_ref(c, allow_empty_id=True) for c in request.from_commits],
            [messages.commit_ref(c) for c in request.provenance],
            messages.commit_type(request.commit_type),
            messages.commit_status(request.status),
            request.block,
        )
        return pfs_pb2.CommitInfos(commit_info=[messages.commit_info(r) for r in records])

    async def DeleteCommit(self, request: pfs_pb2.DeleteCommitRequest, context: Context) -> empty_pb2.Empty:
        await self._pfs.commits.delete(*messages.commit_ref(request.commit))
        return EMPTY

    async def FlushCommit(self, request: pfs_pb2.FlushCommitRequest, context: Context) -> pfs_pb2.CommitInfos:
        records = await self._pfs.commits.flush(
            [messages.commit_ref(c) for c in request.commit], [messages.repo_name(r) for r in request.to_repo]
        )
        return pfs_pb2.CommitInfos(commit_info=[messages.commit_info(r) for r in records])

    async def ListBranch(self, request: pfs_pb2.ListBranchRequest, context: Context) -> pfs_pb2.Branches:
        names = await self._pfs.commits.list_branches(messages.repo_name(request.repo), messages.commit_status(request.status))
        return pfs_pb2.Branches(branches=names)

    async def SquashCommit(self, request: pfs_pb2.SquashCommitRequest, context: Context) -> empty_pb2.Empty:
        repo, to_id = messages.commit_ref(request.to_commit)
        await self._pfs.squash.squash(repo, _same_repo(repo, request.from_commits), to_id)
        return EMPTY

    async def ReplayCommit(self, request: pfs_pb2.ReplayCommitRequest, context: Context) -> pfs_pb2.Commits:
        repo = messages.repo_name(request.from_commits[0].repo) if request.from_commits else ""
        records = await self._pfs.squash.replay(repo, _same_repo(repo, request.from_commits), request.to_branch)
        return pfs_pb2.Commits(commit=[messages.commit(repo, r.id) for r in records])

    # -- files ----------------------------------------------------------------

    async def PutFile(self, request_iterator: AsyncIterator[pfs_pb2.PutFileRequest], context: Context) -> empty_pb2.Empty:
        # The requests come decoded by wire.put_file_request (see app.py: WireCodecs).
        await self._pfs.files.put(_put_items(cast(AsyncIterator[wire.PutFileMessage], request_iterator)))
        return EMPTY

    async def GetFile(self, request: pfs_pb2.GetFileRequest, context: Context) -> AsyncIterator[wrappers_pb2.BytesValue]:
        repo, commit_id, path = messages.file_ref(request.file)
        chunks = self._pfs.files.get(
            repo, commit_id, path,
            offset=validate.non_negative(request.offset_bytes, "offset_bytes"),
            size=validate.non_negative(request.size_bytes, "size_bytes"),
            shard=messages.shard(request.shard), diff=messages.diff_spec(request.diff_method, repo),
        )
        async for chunk in chunks:  # sent as wire bytes (WireCodecs): no message built around each piece
            yield cast(wrappers_pb2.BytesValue, wire.bytes_value(chunk))

    async def InspectFile(self, request: pfs_pb2.InspectFileRequest, context: Context) -> pfs_pb2.FileInfo:
        repo, commit_id, path = messages.file_ref(request.file)
        info = await self._pfs.files.inspect(
            repo, commit_id, path, shard=messages.shard(request.shard), diff=messages.diff_spec(request.diff_method, repo)
        )
        return messages.file_info(repo, commit_id, info)

    async def ListFile(self, request: pfs_pb2.ListFileRequest, context: Context) -> pfs_pb2.FileInfos:
        repo, commit_id, path = messages.file_ref(request.file)
        infos = await self._pfs.files.list(
            repo, commit_id, path, shard=messages.shard(request.shard),
            diff=messages.diff_spec(request.diff_method, repo), mode=messages.list_mode(request.mode),
        )
        # The reply's wire bytes, sent as they are (WireCodecs): parsing them into a
        # message only for gRPC to serialize it again would cost about 1 µs an entry.
        return cast(pfs_pb2.FileInfos, wire.file_infos_wire(repo, commit_id, infos))

    async def DeleteFile(self, request: pfs_pb2.DeleteFileRequest, context: Context) -> empty_pb2.Empty:
        await self._pfs.files.delete(*messages.file_ref(request.file))
        return EMPTY

    async def DeleteAll(self, request: empty_pb2.Empty, context: Context) -> empty_pb2.Empty:
        await self._pfs.delete_all()
        return EMPTY

    async def ArchiveAll(self, request: empty_pb2.Empty, context: Context) -> empty_pb2.Empty:
        await self._pfs.commits.archive_all()
        return EMPTY


async def _put_items(requests: AsyncIterator[wire.PutFileMessage]) -> AsyncIterator[PutItem]:
    """A PutFile stream as domain items: a header wherever `file` is set, then data.

    v1.2 clients name the file in the first message only; naming a file again
    later in the stream starts the next file (our batching of small files).
    """
    async for message in requests:
        request = message.header
        if request is not None and request.HasField("file"):
            repo, commit_id, path = messages.file_ref(request.file, allow_root=False)
            kind = FileKind.DIR if request.file_type == pfs_pb2.FILE_TYPE_DIR else FileKind.FILE
            yield FileHeader(repo, commit_id, path, kind, messages.delimiter(request.delimiter), request.url)
        if message.value is not None:
            yield message.value


def _same_repo(repo: str, commits: Iterable[pfs_pb2.Commit]) -> list[str]:
    ids = []
    for commit in commits:
        other, commit_id = messages.commit_ref(commit)
        if other != repo:
            raise InvalidArgument(f"all commits must be in repo {repo!r}; {other!r} is not")
        ids.append(commit_id)
    return ids


class BlockService(pfs_pb2_grpc.BlockAPIServicer):
    def __init__(self, pfs: Pfs) -> None:
        self._pfs = pfs

    async def PutBlock(self, request_iterator: AsyncIterator[pfs_pb2.PutBlockRequest], context: Context) -> pfs_pb2.BlockRefs:
        first = await anext(aiter(request_iterator), None)
        if first is None:
            return pfs_pb2.BlockRefs()

        async def chunks() -> AsyncIterator[bytes]:
            yield first.value
            async for request in request_iterator:
                yield request.value  # read once: each read copies

        refs = await blocks.put_stream(self._pfs.blocks, messages.delimiter(first.delimiter), chunks())
        return messages.block_refs(refs)

    async def GetBlock(self, request: pfs_pb2.GetBlockRequest, context: Context) -> AsyncIterator[wrappers_pb2.BytesValue]:
        async for chunk in blocks.read_block(self._pfs.blocks, request.block.hash, request.offset_bytes, request.size_bytes):
            yield cast(wrappers_pb2.BytesValue, wire.bytes_value(chunk))  # as GetFile's

    async def DeleteBlock(self, request: pfs_pb2.DeleteBlockRequest, context: Context) -> empty_pb2.Empty:
        await self._pfs.blocks.delete(blocks.block_name(request.block.hash))
        return EMPTY

    async def InspectBlock(self, request: pfs_pb2.InspectBlockRequest, context: Context) -> pfs_pb2.BlockInfo:
        info = await blocks.stat(self._pfs.blocks, request.block.hash)
        return pfs_pb2.BlockInfo(
            block=request.block, created=messages.timestamp(info.created.timestamp()), size_bytes=info.size
        )

    async def ListBlock(self, request: pfs_pb2.ListBlockRequest, context: Context) -> pfs_pb2.BlockInfos:
        infos = [
            pfs_pb2.BlockInfo(block=pfs_pb2.Block(hash=h), created=messages.timestamp(c.timestamp()), size_bytes=s)
            async for h, s, c in blocks.list_blocks(self._pfs.blocks)
        ]
        return pfs_pb2.BlockInfos(block_info=infos)

    async def CreateDiff(self, request: pfs_pb2.DiffInfo, context: Context) -> empty_pb2.Empty:
        diff = request.diff
        await self._pfs.block_diffs.put(diff.commit.repo.name, diff.shard, diff.commit.id, request.SerializeToString())
        return EMPTY

    async def InspectDiff(self, request: pfs_pb2.InspectDiffRequest, context: Context) -> pfs_pb2.DiffInfo:
        diff = request.diff
        return pfs_pb2.DiffInfo.FromString(await self._pfs.block_diffs.get(diff.commit.repo.name, diff.shard, diff.commit.id))

    async def ListDiff(self, request: pfs_pb2.ListDiffRequest, context: Context) -> AsyncIterator[pfs_pb2.DiffInfo]:
        for data in await self._pfs.block_diffs.list(request.shard):
            yield pfs_pb2.DiffInfo.FromString(data)

    async def DeleteDiff(self, request: pfs_pb2.DeleteDiffRequest, context: Context) -> empty_pb2.Empty:
        diff = request.diff
        await self._pfs.block_diffs.delete(diff.commit.repo.name, diff.shard, diff.commit.id)
        return EMPTY
