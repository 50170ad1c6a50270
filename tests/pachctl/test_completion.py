"""Shell completion: the scripts `pachctl completion bash|zsh|fish` prints, run by the
real shells, completing commands, flags and names they ask a real pachd for."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pachyderm_client import Client
from pachyderm_client.pps import method
from pachyderm_client.proto import pfs_pb2, pps_pb2
from tests.support.cli import pachctl
from tests.support.pachd import PachdProcess
from tests.support.ports import free_port
from tests.support.wait import wait_until

TIMEOUT = 120
BIN = Path(sys.executable).parent  # where the installed `pachctl` is


def script(shell: str, tmp_path: Path) -> Path:
    printed = pachctl("127.0.0.1:1", "completion", shell)  # needs no pachd
    assert printed.code == 0 and printed.err == ""
    path = tmp_path / f"pachctl.{shell}"
    path.write_text(printed.out)
    return path


def shell_env(address: str, home: Path) -> dict[str, str]:
    return {**os.environ, "ADDRESS": address, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "HOME": str(home)}


def bash_complete(address: str, tmp_path: Path, line: str) -> tuple[list[str], str]:
    """COMPREPLY, and bash's stderr, for Tab at the end of `line` (a trailing space starts a new word)."""
    # Split as bash does: at spaces, and around each `=` (in COMP_WORDBREAKS).
    words = [part for word in shlex.split(line) for part in re.split("(=)", word) if part]
    words += [""] if line.endswith(" ") else []
    program = (f"source {shlex.quote(str(script('bash', tmp_path)))}\n"
               f"COMP_WORDS=({' '.join(shlex.quote(w) for w in words)})\n"
               f"COMP_CWORD={len(words) - 1}\nCOMP_LINE={shlex.quote(line)}\nCOMP_POINT={len(line)}\n"
               "_pachctl pachctl\nprintf '%s\\n' \"${COMPREPLY[@]}\"\n")
    done = subprocess.run(["bash", "--norc", "--noprofile", "-c", program], capture_output=True, text=True,
                          env=shell_env(address, tmp_path), cwd=tmp_path, timeout=TIMEOUT)
    assert done.returncode == 0, done.stderr
    return [w for w in done.stdout.split("\n") if w], done.stderr


@pytest.fixture
def filled(pachd: PachdProcess, client: Client) -> dict[str, str]:
    """Repos, a commit with a file and a directory, two pipelines with a job each."""
    for repo in ("data", "docs"):
        client.create_repo(repo)
    with client.commit("data") as c:
        client.put_file(("data", c.id), "apple", b"a\n")
        client.put_file(("data", c.id), "dir/banana", b"b\n")
    for name in ("copy", "count"):
        client.create_pipeline(pps_pb2.CreatePipelineRequest(
            pipeline=pps_pb2.Pipeline(name=name), transform=pps_pb2.Transform(cmd=["sh"], stdin=["true"]),
            inputs=[pps_pb2.PipelineInput(repo=pfs_pb2.Repo(name="data"), method=method("map"))]))
    client.flush_commit([("data", c.id)], timeout=TIMEOUT)
    wait_until(lambda: len(client.list_job()) == 2, timeout=TIMEOUT, what="two jobs")
    jobs = {info.pipeline.name: info.job.id for info in client.list_job()}
    return {"address": pachd.address, "commit": c.id, **jobs}


def test_bash_completes_commands_and_each_commands_flags(pachd: PachdProcess, tmp_path: Path) -> None:
    reply, err = bash_complete(pachd.address, tmp_path, "pachctl inspect-")
    assert reply == ["inspect-commit", "inspect-file", "inspect-job", "inspect-pipeline", "inspect-repo"]
    assert err == ""
    flags, _ = bash_complete(pachd.address, tmp_path, "pachctl get-logs --")
    assert {"--follow", "--pipeline", "--address"} <= set(flags) and "--raw" not in flags
    assert "--raw" in bash_complete(pachd.address, tmp_path, "pachctl list-job --")[0]
    assert bash_complete(pachd.address, tmp_path, "pachctl list-repo -o ")[0] == ["json", "text", "yaml"]
    assert bash_complete(pachd.address, tmp_path, "pachctl completion ")[0] == ["bash", "fish", "zsh"]
    assert bash_complete(pachd.address, tmp_path, "pachctl -v ver")[0] == ["version"]
    assert "__complete" not in bash_complete(pachd.address, tmp_path, "pachctl ")[0]


def test_bash_completes_names_from_pachd(filled: dict[str, str], tmp_path: Path) -> None:
    address = filled["address"]

    def reply(line: str) -> list[str]:
        return bash_complete(address, tmp_path, line)[0]

    assert reply("pachctl inspect-repo ") == ["copy", "count", "data", "docs"]
    assert reply("pachctl list-file d") == ["data", "docs"]
    assert reply("pachctl get-file data ") == ["master", filled["commit"]]
    assert reply("pachctl get-file data master/0 ") == ["apple", "dir/"]
    assert reply("pachctl get-file data master/0 dir/") == ["dir/banana"]
    assert reply("pachctl list-commit data/") == ["data/master", f"data/{filled['commit']}"]
    assert reply("pachctl list-branch da") == ["data"]
    assert reply("pachctl inspect-pipeline ") == ["copy", "count"]
    assert reply("pachctl list-job --pipeline ") == ["copy", "count"]
    assert reply("pachctl get-logs -p co") == ["copy", "count"]
    assert reply("pachctl list-job --pipeline=co") == ["copy", "count"]
    assert reply("pachctl list-job --pipeline=") == ["copy", "count"]
    assert reply("pachctl inspect-job ") == sorted([filled["copy"], filled["count"]])
    assert reply(f"pachctl get-logs {filled['copy'][:3]}") == [filled["copy"]]
    assert reply("pachctl get-file data master/0 apple ") == []  # no fourth argument
    (tmp_path / "spec.json").write_text("{}")
    assert reply("pachctl create-pipeline -f sp") == ["spec.json"]  # local files where a local file goes


def test_bash_uses_the_address_on_the_line_and_is_silent_without_pachd(filled: dict[str, str],
                                                                       tmp_path: Path) -> None:
    nowhere = f"127.0.0.1:{free_port()}"
    reply, err = bash_complete(nowhere, tmp_path, "pachctl inspect-repo ")
    assert reply == [] and err == ""
    assert bash_complete(nowhere, tmp_path, "pachctl list-rep")[0] == ["list-repo"]
    on_line = f"pachctl --address {filled['address']} inspect-repo do"
    assert bash_complete(nowhere, tmp_path, on_line)[0] == ["docs"]
    helper = subprocess.run([str(BIN / "pachctl"), "__complete", "2", "pachctl", "get-logs", ""],
                            capture_output=True, env=shell_env(nowhere, tmp_path), timeout=TIMEOUT)
    assert helper.returncode == 0 and helper.stdout == b"" and helper.stderr == b""


def test_bash_script_is_valid_bash(tmp_path: Path) -> None:
    checked = subprocess.run(["bash", "-n", str(script("bash", tmp_path))], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is installed by etc/install-system-packages.sh --test")
def test_zsh_script_completes_from_pachd(filled: dict[str, str], tmp_path: Path) -> None:
    path = script("zsh", tmp_path)
    assert subprocess.run(["zsh", "-n", str(path)], capture_output=True).returncode == 0

    def reply(*words: str) -> list[str]:
        # The completion system's compadd and _files, stood in for by functions that print what they get.
        program = ("compadd() { while [[ $1 == -* ]]; do [[ $1 == -S ]] && shift; [[ $1 == -- ]] && "
                   "{ shift; break }; shift; done; print -rl -- \"$@\" }\n"
                   "_files() { print -r -- FILES }\n"
                   f"source {shlex.quote(str(path))}\n"
                   f"words=({' '.join(shlex.quote(w) for w in words)})\nCURRENT={len(words)}\n_pachctl\n")
        done = subprocess.run(["zsh", "-f", "-c", program], capture_output=True, text=True,
                              env=shell_env(filled["address"], tmp_path), timeout=TIMEOUT)
        assert done.stderr == ""
        return sorted(w for w in done.stdout.split("\n") if w)

    assert reply("pachctl", "inspect-") == ["inspect-commit", "inspect-file", "inspect-job", "inspect-pipeline",
                                            "inspect-repo"]
    assert reply("pachctl", "inspect-repo", "") == ["copy", "count", "data", "docs"]
    assert reply("pachctl", "get-file", "data", "master/0", "") == ["apple", "dir/"]
    assert reply("pachctl", "get-logs", "") == sorted([filled["copy"], filled["count"]])
    assert reply("pachctl", "create-pipeline", "-f", "") == ["FILES"]


@pytest.mark.skipif(shutil.which("fish") is None, reason="fish is installed by etc/install-system-packages.sh --test")
def test_fish_script_completes_from_pachd(filled: dict[str, str], tmp_path: Path) -> None:
    path = script("fish", tmp_path)
    assert subprocess.run(["fish", "--no-execute", str(path)], capture_output=True).returncode == 0

    def reply(line: str) -> list[str]:
        program = f"source {shlex.quote(str(path))}; complete --do-complete {shlex.quote(line)}"
        done = subprocess.run(["fish", "--no-config", "-c", program], capture_output=True, text=True,
                              env=shell_env(filled["address"], tmp_path), cwd=tmp_path, timeout=TIMEOUT)
        assert done.stderr == ""
        return sorted(w.split("\t")[0] for w in done.stdout.split("\n") if w)

    assert reply("pachctl inspect-") == ["inspect-commit", "inspect-file", "inspect-job", "inspect-pipeline",
                                         "inspect-repo"]
    assert reply("pachctl inspect-repo ") == ["copy", "count", "data", "docs"]
    assert reply("pachctl get-file data ") == sorted(["master", filled["commit"]])
    assert reply("pachctl list-job --pipeline ") == ["copy", "count"]
    assert reply("pachctl get-logs ") == sorted([filled["copy"], filled["count"]])
    (tmp_path / "spec.json").write_text("{}")
    assert reply("pachctl create-pipeline -f sp") == ["spec.json"]
