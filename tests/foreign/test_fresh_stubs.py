"""Python stubs generated afresh from the client's .proto files by stock grpc_tools, in a
folder of their own, drive pachd with plain grpc: nothing of ours but the protos."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from grpc_tools import protoc

from pachyderm_client import Client
from tests.foreign.test_node_client import content

ROOT = Path(__file__).resolve().parents[2]

# Runs with the fresh folder first on sys.path; it checks that is where the stubs come from.
CLIENT = textwrap.dedent('''
    import hashlib, json, sys
    from pathlib import Path
    import grpc
    from pachyderm_client.proto import pfs_pb2, pfs_pb2_grpc
    assert Path(pfs_pb2.__file__).resolve().parents[2] == Path(__file__).resolve().parent, pfs_pb2.__file__

    address, repo, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
    pattern = bytes((i * 7 + 3) % 251 for i in range(251))
    data = (pattern * (size // 251 + 1))[:size]
    with grpc.insecure_channel(address) as channel:
        api = pfs_pb2_grpc.APIStub(channel)
        api.CreateRepo(pfs_pb2.CreateRepoRequest(repo=pfs_pb2.Repo(name=repo)))
        commit = api.StartCommit(pfs_pb2.StartCommitRequest(parent=pfs_pb2.Commit(repo=pfs_pb2.Repo(name=repo), id="master")))
        chunk = 256 * 1024
        def requests():
            for offset in range(0, size, chunk):
                request = pfs_pb2.PutFileRequest(value=data[offset:offset + chunk])
                if offset == 0:
                    request.file.commit.CopyFrom(commit)
                    request.file.path = "data"
                    request.file_type = pfs_pb2.FILE_TYPE_REGULAR
                yield request
        api.PutFile(requests())
        api.FinishCommit(pfs_pb2.FinishCommitRequest(commit=commit))
        back = b"".join(r.value for r in api.GetFile(pfs_pb2.GetFileRequest(file=pfs_pb2.File(commit=commit, path="data"))))
        listed = api.ListCommit(pfs_pb2.ListCommitRequest(from_commits=[pfs_pb2.Commit(repo=pfs_pb2.Repo(name=repo))]))
        try:
            api.InspectRepo(pfs_pb2.InspectRepoRequest(repo=pfs_pb2.Repo(name="no_such_repo")))
            missing = "OK"
        except grpc.RpcError as err:
            missing = err.code().name
    print(json.dumps({
        "commit": commit.id,
        "read_sha256": hashlib.sha256(back).hexdigest(),
        "sent_sha256": hashlib.sha256(data).hexdigest(),
        "commits": [{"id": i.commit.id, "size_bytes": i.size_bytes, "finished": i.HasField("finished")}
                    for i in listed.commit_info],
        "missing_repo_status": missing,
    }))
''')


def test_freshly_generated_python_stubs_put_and_get(client: Client, tmp_path: Path) -> None:
    include = Path(protoc.__file__).parent / "_proto"
    source = ROOT / "client"
    protos = sorted(p.relative_to(source).as_posix() for p in (source / "pachyderm_client" / "proto").glob("*.proto"))
    generate = subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{source}", f"-I{include}",
                               f"--python_out={tmp_path}", f"--grpc_python_out={tmp_path}", *protos],
                              cwd=source, capture_output=True, text=True)
    assert generate.returncode == 0, generate.stderr
    # Regular packages, found before the installed pachyderm_client.
    (tmp_path / "pachyderm_client" / "__init__.py").touch()
    (tmp_path / "pachyderm_client" / "proto" / "__init__.py").touch()
    (tmp_path / "client.py").write_text(CLIENT)
    size = 2 * 1024 * 1024 + 99
    run = subprocess.run([sys.executable, str(tmp_path / "client.py"), client.address, "fresh", str(size)],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120, env={"PATH": "/usr/bin:/bin"})
    assert run.returncode == 0, run.stderr
    seen = json.loads(run.stdout)
    assert seen["read_sha256"] == seen["sent_sha256"]
    assert seen["commits"] == [{"id": seen["commit"], "size_bytes": size, "finished": True}]
    assert seen["missing_repo_status"] == "NOT_FOUND"
    assert client.get_file_bytes(("fresh", seen["commit"]), "data") == content(size)
