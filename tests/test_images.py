"""etc/Dockerfile.pachd and etc/Dockerfile.job-shim: read as Docker would,
then built on the real engine (`make images`' script, from a local Debian
base) and used.

The reading checks what a build depends on (every COPY source exists and is
not ignored, stages are named before use, the entry program is one of the
project's console scripts) and what the images promise (pachd on port 650;
job-shim on PATH and at /job-shim, with a shell userland for tutorial
pipelines). The built images are checked for their tags and commands, for
the build's CA bundle being in no layer, and for v1.2's two ways to make a
pipeline image, as the README writes them: FROM pachyderm/job-shim with the
user's code and tools, and a third-party image with the shim added; a
pipeline runs in each. (The tutorial runs in them in tests/executor/test_docker.py.)
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import re
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import docker
import pytest

from pachyderm_client import Client
from pachctl.deploy.options import VERSION_TAG
from pachyderm_client.proto import pfs_pb2, pps_pb2
from tests.support.docker_engine import DEBIAN, PACHD_IMAGE, SHIM_IMAGE, build, docker_pachd
from tests.support.pipelines import MAP, only_job

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
        if keyword == "ARG" and not parsed:
            continue  # a build argument for FROM lines
        if keyword == "FROM":
            words = args.split()
            parsed.append(Stage(words[0], words[2] if len(words) == 3 and words[1].upper() == "AS" else ""))
        else:
            assert parsed, f"{path.name}: {keyword} before FROM"
            parsed[-1].instructions.append((keyword, args))
    return parsed


def ignored() -> list[str]:
    ignore = ROOT / ".dockerignore"
    return [line.strip() for line in ignore.read_text().splitlines() if line.strip() and not line.startswith("#")]


def console_scripts() -> set[str]:
    return set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"])


def exec_form(args: str) -> list[str]:
    parsed = json.loads(args)
    assert isinstance(parsed, list) and all(isinstance(word, str) for word in parsed)
    return parsed


def apt_packages(stage: Stage) -> set[str]:
    """What the stage's RUN lines install with apt-get, always (pkgs="..." at their start)."""
    packages: set[str] = set()
    for command in stage.all("RUN"):
        found = re.match(r'pkgs="([^"]*)";', command)
        if found and "apt-get install" in command and '$pkgs' in command:
            packages |= set(found.group(1).split())
    return packages


DOCKERFILES = ["Dockerfile.pachd", "Dockerfile.job-shim"]


@pytest.mark.parametrize("name", DOCKERFILES)
def test_builds_from_what_the_repository_has(name: str) -> None:
    path = ROOT / "etc" / name
    built = stages(path)
    assert [(stage.image, stage.name) for stage in built] == [
        ("${BASE}", "tools"), ("tools", "requirements"), ("tools", "build"), ("${BASE}", "")]
    assert instructions(path)[0] == ("ARG", "BASE=python:3.11-slim")  # the default base
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
                assert not any(fnmatch.fnmatch(source, pattern) for pattern in ignored()), source
    build = next(stage for stage in built if stage.name == "build")
    assert "pyproject.toml" in " ".join(build.all("COPY"))
    assert any("pip wheel" in run for run in build.all("RUN"))
    assert any("pip install" in run for run in built[-1].all("RUN"))


def test_each_build_is_reproducible_from_the_make_target() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert "bash etc/build-images.sh" in makefile
    script = (ROOT / "etc" / "build-images.sh").read_text()
    assert 'for image in pachd job-shim' in script and '-f "etc/Dockerfile.$image"' in script
    match = re.search(r"^IMAGE_TAG \?= (\S+)$", makefile, re.MULTILINE)
    assert match and match.group(1) == VERSION_TAG  # the tag `pachctl deploy` names by default
    assert f"TAG=${{IMAGE_TAG:-{VERSION_TAG}}}" in script


def test_the_context_leaves_out_what_the_images_do_not_copy() -> None:
    assert {".venv", ".git", "tests", "bench"} <= set(ignored())


def test_pachd_image() -> None:
    final = stages(ROOT / "etc" / "Dockerfile.pachd")[-1]
    assert [exec_form(args) for args in final.all("ENTRYPOINT")] == [["pachd"]]
    assert "pachd" in console_scripts()
    assert final.all("EXPOSE") == ["650"]
    assert "fuse3" in apt_packages(final)
    env = " ".join(final.all("ENV"))
    assert {"PORT=650", "PACHD_HOST=0.0.0.0"} <= set(env.split())


def test_job_shim_image() -> None:
    final = stages(ROOT / "etc" / "Dockerfile.job-shim")[-1]
    assert final.all("ENTRYPOINT") == []  # pods and derived images choose their own command
    commands = [exec_form(args) for args in final.all("CMD")]
    assert len(commands) == 1 and commands[0][0] in console_scripts()
    assert "job-shim" in console_scripts()
    assert any("ln -s /opt/pachyderm/bin/job-shim /job-shim" in run for run in final.all("RUN"))
    assert {"coreutils", "grep", "mawk", "sed", "fuse3"} <= apt_packages(final)


# The images, built (once per session, by the `engine` fixture) and used

def readme_dockerfiles() -> list[str]:
    """The README's ```dockerfile blocks, in order: the two pipeline-image recipes."""
    return re.findall(r"```dockerfile\n(.*?)```", (ROOT / "README.md").read_text(), re.DOTALL)


def run_in(engine: docker.DockerClient, image: str, *command: str) -> bytes:
    output: bytes = engine.containers.run(image, list(command), remove=True, entrypoint=[])
    return output


IMAGE_TIMEOUT = pytest.mark.timeout(1800)  # the first build on a machine takes minutes


@IMAGE_TIMEOUT
def test_both_images_are_built_and_tagged(engine: docker.DockerClient) -> None:
    for name in ("pachyderm/pachd", "pachyderm/job-shim"):
        latest, versioned = engine.images.get(f"{name}:latest"), engine.images.get(f"{name}:{VERSION_TAG}")
        assert latest.id == versioned.id
    pachd = engine.images.get("pachyderm/pachd:latest").attrs["Config"]
    assert pachd["Entrypoint"] == ["pachd"] and "650/tcp" in pachd["ExposedPorts"]
    assert b"--executor" in engine.containers.run("pachyderm/pachd:latest", ["--help"], remove=True)
    shim = engine.images.get("pachyderm/job-shim:latest").attrs["Config"]
    assert shim["Entrypoint"] is None and shim["Cmd"] == ["job-shim", "--help"]
    assert b"job-shim" in run_in(engine, SHIM_IMAGE, "/job-shim", "--help")
    assert run_in(engine, SHIM_IMAGE, "sh", "-c", "for c in job-shim awk grep sed; do command -v $c; done").split() == [
        b"/usr/local/bin/job-shim", b"/usr/bin/awk", b"/usr/bin/grep", b"/usr/bin/sed"]


@IMAGE_TIMEOUT
def test_the_builds_ca_bundle_is_in_no_image(engine: docker.DockerClient) -> None:
    """etc/docker-build.sh hands the build the machine's CA bundle as a secret: no file
    of either image is that bundle, and no layer's history names it."""
    bundle = Path(os.environ.get("PIP_CERT") or os.environ.get("SSL_CERT_FILE") or "/etc/ssl/certs/ca-certificates.crt")
    if not bundle.is_file():
        pytest.skip(f"no CA bundle at {bundle} was handed to the build")
    digest = hashlib.sha256(bundle.read_bytes()).hexdigest().encode()
    for image in (PACHD_IMAGE, SHIM_IMAGE):
        sums = run_in(engine, image, "sh", "-c", "find / -xdev -type f -size +8k -exec sha256sum {} + 2>/dev/null; true")
        assert sums and digest not in sums
        history = " ".join(layer.get("CreatedBy", "") for layer in engine.images.get(image).history())
        assert str(bundle) not in history and "/run/secrets/ca" not in history.replace("type=secret,id=ca", "")


def run_pipeline(tmp_path: Path, image: str, cmd: list[str], stdin: list[str], files: dict[str, bytes]) -> dict[str, bytes]:
    """pachd on the engine runs one pipeline in `image` over `files`: its output files."""
    server = docker_pachd(tmp_path)
    try:
        with Client(server.address) as client:
            client.create_repo("data")
            request = pps_pb2.CreatePipelineRequest(
                pipeline=pps_pb2.Pipeline(name="recipe"),
                transform=pps_pb2.Transform(image=image, cmd=cmd, stdin=stdin),
                parallelism_spec=pps_pb2.ParallelismSpec(constant=1),
                inputs=[pps_pb2.PipelineInput(repo=pfs_pb2.Repo(name="data"), method=MAP)])
            client.create_pipeline(request)
            with client.commit("data") as commit:
                client.put_files(("data", commit.id), list(files.items()))
            info = only_job(client, "recipe", timeout=180)
            logs = b"".join(client.get_logs(info.job.id))
            assert info.state == pps_pb2.JOB_SUCCESS, logs
            out = {f.file.path.lstrip("/"): client.get_file_bytes(("recipe", info.output_commit.id), f.file.path)
                   for f in client.list_file(("recipe", info.output_commit.id), "")}
            client.delete_all()
            return out
    finally:
        server.stop()


@IMAGE_TIMEOUT
def test_recipe_from_job_shim(engine: docker.DockerClient, tmp_path: Path) -> None:
    """FROM pachyderm/job-shim, plus a tool (bc, from Debian) and the user's program."""
    recipe = readme_dockerfiles()[0]
    assert recipe.startswith(f"FROM pachyderm/job-shim:{VERSION_TAG}\n")
    context = tmp_path / "context"
    context.mkdir()
    (context / "Dockerfile").write_text(recipe)
    (context / "total.sh").write_text('cat /pfs/data/* | paste -sd+ | bc > /pfs/out/total\n')
    build("pach-test/recipe-job-shim:1", context)
    out = run_pipeline(tmp_path, "pach-test/recipe-job-shim:1", ["sh", "/code/total.sh"], [],
                       {"a": b"40\n", "b": b"2\n", "c": b"100\n"})
    assert out == {"total": b"142\n"}


@IMAGE_TIMEOUT
def test_recipe_third_party_image(engine: docker.DockerClient, tmp_path: Path) -> None:
    """An image that is not ours (a debootstrap Debian) with the shim's wheel added as the README says."""
    recipe = readme_dockerfiles()[1]
    assert recipe.startswith("FROM your/debian-based-image\n")
    context = tmp_path / "context"
    wheel = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(context / "dist"),
                            str(ROOT / "client"), str(ROOT)], capture_output=True, text=True, timeout=600)
    assert wheel.returncode == 0, wheel.stderr
    version = VERSION_TAG.split("-")[0]
    assert sorted(p.name for p in (context / "dist").iterdir()) == [
        f"pachyderm_client-{version}-py3-none-any.whl", f"pachyderm_py-{version}-py3-none-any.whl"]
    (context / "Dockerfile").write_text(recipe.replace("your/debian-based-image", DEBIAN, 1))
    build("pach-test/recipe-third-party:1", context)
    def layers(image: str) -> set[str]:
        return set(engine.images.get(image).attrs["RootFS"]["Layers"])
    assert layers(DEBIAN) <= layers("pach-test/recipe-third-party:1")  # built on the third-party image
    assert not layers("pach-test/recipe-third-party:1") & (layers(SHIM_IMAGE) - layers(DEBIAN))  # none of ours
    out = run_pipeline(tmp_path, "pach-test/recipe-third-party:1", ["sh"],
                       ["for f in /pfs/data/*; do tr a-z A-Z < $f > /pfs/out/$(basename $f); done"],
                       {"fruit": b"apple\n", "veg": b"leek\n"})
    assert out == {"fruit": b"APPLE\n", "veg": b"LEEK\n"}
