"""etc/Dockerfile.pachd and etc/Dockerfile.job-shim, read as Docker would.

No Docker engine runs here, so the images are not built: these tests parse
each Dockerfile into its instructions and check what a build depends on
(every COPY source exists and is not ignored, stages are named before use,
the entry program is one of the project's console scripts) and what the
images promise (pachd on port 650; job-shim on PATH and at /job-shim, with a
shell userland for tutorial pipelines).
"""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pachctl.deploy.options import VERSION_TAG

ROOT = Path(__file__).resolve().parent.parent
KNOWN = {"FROM", "RUN", "COPY", "ADD", "ENV", "WORKDIR", "EXPOSE", "ENTRYPOINT", "CMD", "ARG", "LABEL", "USER",
         "VOLUME", "SHELL", "HEALTHCHECK", "STOPSIGNAL", "ONBUILD"}


@dataclass
class Stage:
    image: str
    name: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for key, args in self.instructions if key == keyword]


def instructions(path: Path) -> list[tuple[str, str]]:
    """(KEYWORD, arguments) per instruction: comments dropped, continuations joined."""
    found: list[tuple[str, str]] = []
    pending = ""
    for line in path.read_text().splitlines():
        if line.strip().startswith("#") or not line.strip():
            continue
        pending += line.rstrip()
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        keyword, _, args = pending.strip().partition(" ")
        found.append((keyword.upper(), " ".join(args.split())))
        pending = ""
    assert not pending, f"{path.name} ends inside a continued line"
    return found


def stages(path: Path) -> list[Stage]:
    parsed: list[Stage] = []
    for keyword, args in instructions(path):
        assert keyword in KNOWN, f"{path.name}: unknown instruction {keyword}"
        if keyword == "FROM":
            words = args.split()
            parsed.append(Stage(words[0], words[2] if len(words) == 3 and words[1].upper() == "AS" else ""))
        else:
            assert parsed, f"{path.name}: {keyword} before FROM"
            parsed[-1].instructions.append((keyword, args))
    return parsed


def ignored(path: Path) -> list[str]:
    ignore = path.with_name(path.name + ".dockerignore")
    if not ignore.exists():
        return []
    return [line.strip() for line in ignore.read_text().splitlines() if line.strip() and not line.startswith("#")]


def console_scripts() -> set[str]:
    return set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"])


def exec_form(args: str) -> list[str]:
    parsed = json.loads(args)
    assert isinstance(parsed, list) and all(isinstance(word, str) for word in parsed)
    return parsed


def apt_packages(stage: Stage) -> set[str]:
    packages: set[str] = set()
    for command in stage.all("RUN"):
        for part in command.split("&&"):
            words = shlex.split(part)
            if words[:2] == ["apt-get", "install"]:
                packages |= {word for word in words[2:] if not word.startswith("-")}
    return packages


DOCKERFILES = ["Dockerfile.pachd", "Dockerfile.job-shim"]


@pytest.mark.parametrize("name", DOCKERFILES)
def test_builds_from_what_the_repository_has(name: str) -> None:
    path = ROOT / "etc" / name
    built = stages(path)
    assert [stage.image for stage in built] == ["python:3.11-slim", "python:3.11-slim"]
    names = [stage.name for stage in built]
    for index, stage in enumerate(built):
        for args in stage.all("COPY"):
            words = args.split()
            sources = [word for word in words[:-1] if not word.startswith("--")]
            source_stage = next((word.split("=", 1)[1] for word in words if word.startswith("--from=")), None)
            if source_stage is not None:
                assert source_stage in names[:index], f"{name}: COPY from unknown stage {source_stage}"
                continue
            for source in sources:
                assert (ROOT / source).exists(), f"{name}: COPY source {source} is not in the repository"
                assert not any(fnmatch.fnmatch(source, pattern) for pattern in ignored(path)), source
    assert "pyproject.toml" in " ".join(built[0].all("COPY"))
    assert any("pip wheel" in run for run in built[0].all("RUN"))
    assert any("pip install" in run for run in built[-1].all("RUN"))


@pytest.mark.parametrize("name", DOCKERFILES)
def test_each_build_is_reproducible_from_the_make_target(name: str) -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(rf"docker build -f etc/{re.escape(name)} ", makefile)
    match = re.search(r"^IMAGE_TAG \?= (\S+)$", makefile, re.MULTILINE)
    assert match and match.group(1) == VERSION_TAG  # the tag `pachctl deploy` names by default


def test_pachd_image() -> None:
    final = stages(ROOT / "etc" / "Dockerfile.pachd")[-1]
    assert [exec_form(args) for args in final.all("ENTRYPOINT")] == [["pachd"]]
    assert "pachd" in console_scripts()
    assert final.all("EXPOSE") == ["650"]
    assert "fuse3" in apt_packages(final)
    env = " ".join(final.all("ENV"))
    assert "PORT=650" in env.split()


def test_job_shim_image() -> None:
    final = stages(ROOT / "etc" / "Dockerfile.job-shim")[-1]
    assert final.all("ENTRYPOINT") == []  # pods and derived images choose their own command
    commands = [exec_form(args) for args in final.all("CMD")]
    assert len(commands) == 1 and commands[0][0] in console_scripts()
    assert "job-shim" in console_scripts()
    assert any("ln -s /usr/local/bin/job-shim /job-shim" in run for run in final.all("RUN"))
    assert {"coreutils", "grep", "mawk", "sed", "fuse3"} <= apt_packages(final)
