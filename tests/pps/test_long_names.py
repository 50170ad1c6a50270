"""A file whose name the pod's local disk cannot hold (PFS can) fails the job,
its logs naming the file, instead of crashing the pod until it gives up."""

from __future__ import annotations

from pachyderm_client import Client
from pachyderm_client.proto import pps_pb2
from tests.support.pipelines import MAP, only_job, pipeline

LONG = "n" * 300  # over the 255 bytes of a name on the local filesystem


def test_a_name_too_long_for_the_local_disk_fails_the_job_naming_it(client: Client) -> None:
    client.create_repo("data")
    client.create_pipeline(pipeline("copy", "cp -r /pfs/data/. /pfs/out/", [("data", MAP)]))
    with client.commit("data") as c:
        client.put_files(("data", c.id), [("ok", b"x\n"), (f"dir/{LONG}", b"y\n")])
    job = only_job(client, "copy")
    assert job.state == pps_pb2.JOB_FAILURE
    logs = b"".join(client.get_logs(job.job.id))
    assert f"data/dir/{LONG}".encode() in logs
    assert b"Traceback" not in logs
