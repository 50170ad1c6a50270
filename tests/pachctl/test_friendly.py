"""pachctl's edges: flags after the command, typos, bad flags, and a pachd that is not there."""

from __future__ import annotations

import socket

from tests.support.cli import pachctl
from tests.support.pachd import PachdProcess
from tests.support.ports import free_port


def test_global_flags_after_the_command(pachd: PachdProcess) -> None:
    assert pachctl(pachd.address, "list-repo", "-q").code == 0
    assert pachctl(pachd.address, "list-repo", "-v").code == 0
    assert pachctl(pachd.address, "-q", "list-repo").code == 0


def test_typo_suggests_the_command() -> None:
    ran = pachctl("127.0.0.1:1", "list-rpo")
    assert ran.code == 2 and "did you mean list-repo?" in ran.err


def test_bad_flag_shows_the_commands_usage() -> None:
    ran = pachctl("127.0.0.1:1", "list-repo", "--bogus")
    assert ran.code == 2 and "usage: pachctl list-repo" in ran.err and "--bogus" in ran.err


def test_refused_connection_names_the_address() -> None:
    address = f"127.0.0.1:{free_port()}"
    ran = pachctl(address, "list-repo")
    assert ran.code == 1
    first, hint = ran.err.splitlines()
    assert address in first and "ADDRESS" in hint and "pachd" in hint


def test_silent_port_fails_within_the_connect_deadline() -> None:
    with socket.socket() as silent:  # accepts TCP connections (the kernel does) but never speaks
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        address = f"127.0.0.1:{silent.getsockname()[1]}"
        ran = pachctl(address, "list-repo")
    assert ran.code == 1 and address in ran.err.splitlines()[0]


def test_help_shows_examples_that_parse() -> None:
    import shlex

    from pachctl.cli.common import EXAMPLES
    from pachctl.main import build_parser

    parser = build_parser()
    for command, lines in EXAMPLES.items():
        assert "examples:" in pachctl("127.0.0.1:1", command, "-h").out
        for line in lines:
            if line.startswith("pachctl "):
                words = shlex.split(line.split(" < ")[0].split(" > ")[0])[1:]
                assert parser.parse_args(words).command == command


def test_a_command_missing_here_is_warned_about(pachd: PachdProcess) -> None:
    import json

    missing = {"pipeline": {"name": "nope"}, "transform": {"cmd": ["no-such-program-here"]}, "inputs": []}
    ran = pachctl(pachd.address, "create-pipeline", stdin=json.dumps(missing))
    assert ran.code == 0 and "'no-such-program-here' is not found on this machine" in ran.err
    present = {"pipeline": {"name": "yes"}, "transform": {"cmd": ["sh"]}, "inputs": []}
    ran = pachctl(pachd.address, "create-pipeline", stdin=json.dumps(present))
    assert ran.code == 0 and ran.err == ""
