"""pachctl loads only the chosen command's module: cheap start-up (speed itself is in bench/cli_bench.py)."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

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
    "loaded = [m for m, mod in sys.modules.items() if type(mod).__name__ != '_LazyModule']\n"
    "print(code, ' '.join(sorted(loaded)), file=sys.stderr)")
NOT_FOR_PFS = ("pachyderm_client.proto.pps_pb2", "pachyderm_client.proto.pps_pb2_grpc", "pachyderm_client.proto.pps_internal_pb2", "pachyderm_client.proto.pps_internal_pb2_grpc",
               "pachyderm_client.proto.pfs_admin_pb2", "pachyderm_client.proto.pfs_admin_pb2_grpc", "pachyderm_client.proto.pps_jobs_pb2", "difflib", "yaml", "rich", "pachctl.manifest")


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
        for heavy in NOT_FOR_PFS:
            assert heavy not in loaded, (command, heavy)


def test_a_pps_command_loads_the_pps_modules_it_needs(pachd: PachdProcess) -> None:
    loaded = _loaded_by(pachd.address, "list-job")
    assert "pachyderm_client.proto.pps_pb2" in loaded and "pachyderm_client.proto.pps_pb2_grpc" in loaded
