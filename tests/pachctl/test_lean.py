"""Modules pachctl and the shim defer (pachctl/lean.py): registered unrun, run on first use,
and then the same as if imported at the start, from any number of threads; the client
library alone defers nothing."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.support.pachd import PachdProcess


def _run(script: str, *args: str) -> str:
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(script), *args], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_deferred_module_runs_on_its_first_attribute_once_whatever_the_threads() -> None:
    out = _run('''
        import sys, threading
        from pachctl.lean import defer_import

        defer_import("tomllib")
        import tomllib  # found loaded: not run
        print(type(sys.modules["tomllib"]).__name__, "tomllib._parser" in sys.modules)
        start = threading.Barrier(8)
        seen = []

        def read():
            start.wait()
            seen.append(tomllib.loads("a = 1"))

        threads = [threading.Thread(target=read) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        print(seen == [{"a": 1}] * 8, type(sys.modules["tomllib"]).__name__, sys.modules["tomllib"] is tomllib)
    ''')
    assert out.split() == ["_Deferred", "False", "True", "module", "True"]


def test_what_pachctl_defers_works_when_used(pachd: PachdProcess) -> None:
    # asyncio and grpc.aio (an asyncio channel to pachd), and protobuf's text format.
    out = _run('''
        import sys
        import pachctl.lean
        import pachyderm_client
        deferred = sorted(n for n, m in sys.modules.items() if type(m).__name__ == "_Deferred")
        print(" ".join(n for n in deferred if n in ("asyncio", "grpc.aio")))

        import asyncio
        import grpc
        from google.protobuf import empty_pb2, text_format
        from pachyderm_client.proto import health_pb2_grpc, pfs_pb2

        async def health():
            async with grpc.aio.insecure_channel(sys.argv[1]) as channel:
                await health_pb2_grpc.HealthStub(channel).Health(empty_pb2.Empty(), timeout=60)
                return "healthy"

        print(asyncio.run(health()), text_format.MessageToString(pfs_pb2.Repo(name="data")).strip())
    ''', pachd.address)
    assert out.splitlines() == ["asyncio grpc.aio", 'healthy name: "data"']


def test_the_client_library_alone_leaves_the_import_system_as_it_is() -> None:
    out = _run('''
        import sys
        import pachyderm_client
        print(sorted(n for n, m in sys.modules.items() if type(m).__name__ == "_Deferred"), "asyncio" in sys.modules)
    ''')
    assert out.split() == ["[]", "True"]
