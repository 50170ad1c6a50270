"""pachpy.pods.PodData: our own calls for moving a job pod's data in a few calls (see pachyderm_client/proto/pods.proto)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import grpc

from pachd import validate
from pachd.pfs import Pfs, messages
from pachd.pfs.records import BlockRef
from pachd.pfs.refs import FileRefs

from pachyderm_client.proto import fuse_pb2, pfs_pb2, pods_pb2, pods_pb2_grpc

Context = grpc.aio.ServicerContext[object, object]

BATCH = 1000  # files per message


class PodDataService(pods_pb2_grpc.PodDataServicer):
    def __init__(self, pfs: Pfs) -> None:
        self._pfs = pfs

    async def ListFileRefs(self, request: fuse_pb2.CommitMount, context: Context) -> AsyncIterator[pods_pb2.FileRefs]:
        repo, commit_id = messages.commit_ref(request.commit)
        diff = messages.diff_spec(request.diff_method, repo)
        if diff is not None and request.full_file and not diff.full_file:
            diff = type(diff)(diff.from_commit, True)
        batch = pods_pb2.FileRefs()
        async for path, refs in self._pfs.files.walk(repo, commit_id, shard=messages.shard(request.shard), diff=diff):
            messages.add_block_refs(batch.files.add(path=path).block_refs, refs)  # in place: once per file
            if len(batch.files) >= BATCH:
                yield batch
                batch = pods_pb2.FileRefs()
        if batch.files:
            yield batch

    async def PutFileRefs(self, request: pods_pb2.PutFileRefsRequest, context: Context) -> pods_pb2.PutFileRefsResponse:
        repo, commit_id = messages.commit_ref(request.commit)
        files = [FileRefs(validate.file_path(f.path, allow_root=False), _block_refs(f.block_refs), f.replace)
                 for f in request.files]  # once per file of a pod's output: no call or generator more than needed
        deletes = [validate.file_path(p, allow_root=False) for p in request.delete]
        return pods_pb2.PutFileRefsResponse(files=await self._pfs.refs.put(repo, commit_id, files, deletes,
                                                                           finish=request.finish))


def _block_refs(refs: Sequence[pfs_pb2.BlockRef]) -> tuple[BlockRef, ...]:
    if len(refs) == 1:  # most files of a pod's output: no comprehension to run for one reference
        ref = refs[0]
        return (BlockRef(ref.block.hash, ref.range.lower, ref.range.upper),)
    return tuple([BlockRef(r.block.hash, r.range.lower, r.range.upper) for r in refs])
