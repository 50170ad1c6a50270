"""A stand-in for v1.2.3's Go job-shim: `go_job_shim.py <job-id>`.

It talks to pachd only as the Go shim does: it finds pachd through
Kubernetes' service variables (PACHD_PORT_650_TCP_ADDR; the Go shim always
dials port 650, the stand-in takes PACHD_PORT_650_TCP_PORT since test pachds
listen elsewhere), calls StartJob with the job ID and nothing else (no pod
index or name metadata), makes /pfs/<mount> of each commit mount, runs the
transform's cmd with its stdin lines, writes each file of /pfs/out into the
pod's output commit with PutFile, and calls FinishJob with the pod index
StartJob gave. The Go shim reads /pfs through its own FUSE mount; the
stand-in copies the inputs in with ListFile and GetFile instead.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc

from pachyderm_client.proto import fuse_pb2, pfs_pb2, pfs_pb2_grpc, pps_internal_pb2, pps_internal_pb2_grpc, pps_pb2

PFS = Path("/pfs")
CHUNK = 1 << 20


def copy_in(pfs: pfs_pb2_grpc.APIStub, mount: fuse_pb2.CommitMount, path: str, target: Path) -> None:
    request = pfs_pb2.ListFileRequest(
        file=pfs_pb2.File(commit=mount.commit, path=path), shard=mount.shard, diff_method=mount.diff_method,
        mode=pfs_pb2.ListFile_NORMAL,
    )
    for info in pfs.ListFile(request).file_info:
        name = target / info.file.path.lstrip("/")
        if info.file_type == pfs_pb2.FILE_TYPE_DIR:
            name.mkdir(parents=True, exist_ok=True)
            copy_in(pfs, mount, info.file.path, target)
            continue
        name.parent.mkdir(parents=True, exist_ok=True)
        get = pfs_pb2.GetFileRequest(file=info.file, shard=mount.shard, diff_method=mount.diff_method)
        with open(name, "wb") as handle:
            for chunk in pfs.GetFile(get):
                handle.write(chunk.value)


def put_requests(commit: pfs_pb2.Commit, path: str, local: Path) -> Iterator[pfs_pb2.PutFileRequest]:
    with open(local, "rb") as handle:
        first = True
        while True:
            data = handle.read(CHUNK)
            if not data and not first:
                return
            if first:
                yield pfs_pb2.PutFileRequest(file=pfs_pb2.File(commit=commit, path=path),
                                             file_type=pfs_pb2.FILE_TYPE_REGULAR, value=data)
                first = False
            else:
                yield pfs_pb2.PutFileRequest(value=data)
            if not data:
                return


def main(job_id: str) -> int:
    address = f"{os.environ['PACHD_PORT_650_TCP_ADDR']}:{os.environ.get('PACHD_PORT_650_TCP_PORT') or 650}"
    channel = grpc.insecure_channel(address)
    jobs = pps_internal_pb2_grpc.InternalJobAPIStub(channel)
    pfs = pfs_pb2_grpc.APIStub(channel)
    job = pps_pb2.Job(id=job_id)
    response = jobs.StartJob(pps_internal_pb2.StartJobRequest(job=job))
    out = None
    for mount in response.commit_mounts:
        target = PFS / (mount.alias or mount.commit.repo.name)
        target.mkdir(parents=True, exist_ok=True)
        if mount.alias == "out":
            out = mount.commit
            continue
        copy_in(pfs, mount, "/", target)
    stdin = "".join(line + "\n" for line in response.transform.stdin).encode()
    code = subprocess.run(list(response.transform.cmd), input=stdin).returncode
    success = code == 0 or code in response.transform.accept_return_code
    if success and out is not None:
        for local in sorted(p for p in (PFS / "out").rglob("*") if p.is_file()):
            path = "/" + local.relative_to(PFS / "out").as_posix()
            pfs.PutFile(put_requests(out, path, local))
    if not success:
        print(f"Error from exec: exit status {code}", file=sys.stderr)
    jobs.FinishJob(pps_internal_pb2.FinishJobRequest(job=job, success=success, pod_index=response.pod_index))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
