"""pachctl loads only the chosen command's module, and the shim and pachctl run none of what grpc and
protobuf import for asyncio and the pure-Python runtime: cheap start-up (speed itself is in
bench/cli_bench.py and bench/pps_bench.py)."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from pachctl.main import COMMANDS, build_parser
from tests.support.pachd import PachdProcess


def test_commands_table_matches_what_the_groups_register() -> None:
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    registered: dict[str, list[str]] = {}
    for name, sub in commands.choices.items():
        registered.setdefault(sub.get_default("run").__module__.rsplit(".", 1)[1], []).append(name)
    assert {group: tuple(names) for group, names in registered.items()} == COMMANDS


def test_list_repo_imports_no_other_command_group() -> None:
    check = (
        "import sys\n"
        "try:\n    from pachctl.main import main; main(['list-repo', '-h'])\nexcept SystemExit:\n    pass\n"
        "print(' '.join(sorted(m for m in sys.modules if m.startswith(('pachctl', 'yaml', 'rich', 'urllib.request')))), file=sys.stderr)")
    loaded = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=True).stderr.split()
    assert "pachctl.cli.repo" in loaded
    for heavy in ("pachctl.cli.file", "pachctl.cli.deploy", "pachctl.cli.pipeline", "pachctl.manifest", "yaml", "rich",
                  "urllib.request"):
        assert heavy not in loaded


def test_completing_an_argument_imports_only_that_commands_group() -> None:
    check = (
        "import sys\n"
        "from pachctl.main import main; main(['__complete', '2', 'pachctl', 'inspect-repo', ''])\n"
        "print(' '.join(sorted(m for m in sys.modules if m.startswith(('pachctl', 'yaml', 'rich')))), file=sys.stdout)")
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=True,
                          env={"ADDRESS": "127.0.0.1:1", "PATH": ""})
    loaded = done.stdout.split()
    assert "pachctl.cli.repo" in loaded and done.stderr == ""
    for heavy in ("pachctl.cli.file", "pachctl.cli.job", "pachctl.cli.misc", "pachctl.cli.pipeline", "pachctl.manifest",
                  "yaml", "rich"):
        assert heavy not in loaded


LOADED = (
    "import sys\n"
    "from pachctl.main import main\n"
    "code = main(sys.argv[1:])\n"
    "loaded = [m for m, mod in sys.modules.items() if type(mod).__name__ not in ('_LazyModule', '_Deferred')]\n"
    "print(code, ' '.join(sorted(loaded)), file=sys.stderr)")
NOT_FOR_PFS = ("pachyderm_client.proto.pps_pb2", "pachyderm_client.proto.pps_pb2_grpc", "pachyderm_client.proto.pps_internal_pb2", "pachyderm_client.proto.pps_internal_pb2_grpc",
               "pachyderm_client.proto.pfs_admin_pb2", "pachyderm_client.proto.pfs_admin_pb2_grpc", "pachyderm_client.proto.pps_jobs_pb2", "difflib", "yaml", "rich", "pachctl.manifest")
NEVER_RUN = ("asyncio", "grpc.aio", "google.protobuf.internal.python_message", "google.protobuf.text_format", "ssl")


def _loaded_by(address: str, *command: str) -> list[str]:
    run = subprocess.run([sys.executable, "-c", LOADED, *command], capture_output=True, text=True, check=True,
                         env={**os.environ, "ADDRESS": address})
    code, *loaded = run.stderr.split()
    assert code == "0"
    return loaded


def test_version_and_list_repo_run_no_pps_or_internal_protobuf_module(pachd: PachdProcess) -> None:
    for command in (["version"], ["list-repo"]):
        loaded = _loaded_by(pachd.address, *command)
        assert "grpc" in loaded
        for heavy in NOT_FOR_PFS + NEVER_RUN:
            assert heavy not in loaded, (command, heavy)


def test_a_pps_command_loads_the_pps_modules_it_needs(pachd: PachdProcess) -> None:
    loaded = _loaded_by(pachd.address, "list-job")
    assert "pachyderm_client.proto.pps_pb2" in loaded and "pachyderm_client.proto.pps_pb2_grpc" in loaded


def test_the_shim_runs_none_of_what_it_never_uses_until_start_job(pachd: PachdProcess) -> None:
    # No job credential: StartJob is refused and the shim exits; what ran is read at its exit.
    check = ("import atexit, runpy, sys\n"
             "atexit.register(lambda: print(' '.join(m for m, mod in sys.modules.items()"
             " if type(mod).__name__ not in ('_LazyModule', '_Deferred')), file=sys.stderr))\n"
             "sys.argv = ['job-shim', 'some-job']\n"
             "runpy.run_module('shim.main', run_name='__main__')\n")
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=120,
                          env={"PATH": os.environ.get("PATH", ""), "PACHD_ADDRESS": pachd.address})
    loaded = done.stderr.split()
    assert "grpc" in loaded and "pachyderm_client" in loaded, done.stderr
    for heavy in NEVER_RUN:
        assert heavy not in loaded, heavy


def test_python_starts_without_an_import_hook_of_the_editable_installs() -> None:
    # `make install` installs the client and the project as plain paths (a .pth file), which site
    # adds to sys.path; an import hook of setuptools' would run, with pathlib, in every process.
    check = "import sys; print(' '.join(sorted(sys.modules)))"
    loaded = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=True).stdout.split()
    assert not [m for m in loaded if m.startswith("__editable__")], loaded
    assert "pathlib" not in loaded


# What asking for a job does not need: the data path (shim.layout and the modules it calls), the
# other services' generated modules, and what grpc and the standard library import but the start
# never runs (pachctl/lean.py).
NOT_BEFORE_START_JOB = (
    "shim.layout", "subprocess", "json", "hashlib", "concurrent.futures",
    "pachyderm_client.packing", "pachyderm_client.local", "pachyderm_client.proto.pfs_pb2_grpc",
    "pachyderm_client.proto.pods_pb2", "pachyderm_client.proto.pods_pb2_grpc",
    "pachyderm_client.proto.pps_pb2_grpc", "pachyderm_client.proto.pps_jobs_pb2",
    "pachyderm_client.proto.pfs_admin_pb2", "pachyderm_client.proto.health_pb2_grpc",
    "pachyderm_client.proto.protoversion_pb2", "inspect", "pkgutil", "socket", "traceback", "calendar", "ipaddress",
)
SHIM_AT_EXIT = (
    "import atexit, gc, runpy, sys\n"
    "atexit.register(lambda: print(gc.isenabled(), gc.get_freeze_count() > 0, ' '.join(m for m, mod in sys.modules.items()"
    " if type(mod).__name__ not in ('_LazyModule', '_Deferred')), file=sys.stderr))\n"
    "sys.argv = ['job-shim', *sys.argv[1:]]\n"
    "runpy.run_module('shim.main', run_name='__main__')\n")


def test_until_start_job_answers_the_shim_loads_only_what_asking_for_its_job_takes(tmp_path: Path) -> None:
    # A job that does not exist: StartJob answers NOT_FOUND and the shim exits 0 at once, so what
    # it loaded (read at its exit) is what it loaded to ask.
    server = PachdProcess(tmp_path / "data", extra_args=["--allow-anonymous-pods"]).start()
    try:
        done = subprocess.run([sys.executable, "-c", SHIM_AT_EXIT, "no-such-job"], capture_output=True, text=True,
                              timeout=120, env={"PATH": os.environ.get("PATH", ""), "PACHD_ADDRESS": server.address})
    finally:
        server.stop()
    assert done.returncode == 0, done.stderr
    enabled, frozen, *loaded = done.stderr.splitlines()[-1].split()
    assert "pachyderm_client.proto.pps_internal_pb2" in loaded and "grpc._channel" in loaded, loaded
    for heavy in NOT_BEFORE_START_JOB + NEVER_RUN:
        assert heavy not in loaded, heavy
    # Collection, off while the pod started, is on again, without what start-up made.
    assert (enabled, frozen) == ("True", "True")


def test_a_warm_pod_has_loaded_the_data_path_before_it_says_it_is_ready() -> None:
    check = ("import sys\n"
             "import shim.main\n"
             "shim.main.preload()\n"
             "print(' '.join(m for m, mod in sys.modules.items() if type(mod).__name__ not in ('_LazyModule', '_Deferred')))")
    loaded = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=True,
                            timeout=120).stdout.split()
    for module in ("shim.layout", "subprocess", "grpc._channel", "pachyderm_client.proto.pps_internal_pb2",
                   "pachyderm_client.proto.pps_internal_pb2_grpc", "pachyderm_client.proto.pfs_pb2_grpc",
                   "pachyderm_client.proto.pods_pb2_grpc"):
        assert module in loaded, module
