"""The client is a distribution of its own: its wheel, built from client/ alone,
installs into a fresh virtualenv beside grpcio and protobuf only, and drives a
real pachd there, where pachd, pachctl and the shim cannot be imported."""

from __future__ import annotations

import importlib.metadata
import json
import re
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

from tests.support.pachd import PachdProcess

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent('''
    import importlib.metadata, importlib.util, json, re, sys
    import pachyderm_client
    from pachyderm_client import AlreadyExistsError, Client, NotFoundError, PachydermError
    from pachyderm_client.proto import pfs_pb2

    with Client(sys.argv[1]) as client:
        client.create_repo("dist")
        try:
            client.create_repo("dist")
            again = "no error"
        except AlreadyExistsError as err:
            again = [type(err).__name__, err.code.name, isinstance(err, PachydermError)]
        with client.commit("dist", "master") as commit:
            client.put_file(commit, "greeting", b"hello from a wheel\\n")
        with client.get_file("dist/master", "greeting") as reader:
            read = reader.read().decode()
        commits = [info.commit.id for info in client.list_commit(["dist"])]
        try:
            client.inspect_commit(("dist", "master/9"))
            missing = "no error"
        except NotFoundError as err:
            missing = err.code.name

    def needed(name, seen):
        """`name` and what it requires (no extras), transitively."""
        name = re.sub(r"[-_.]+", "-", name).lower()
        if name not in seen:
            seen.add(name)
            for requirement in importlib.metadata.requires(name) or ():
                if "extra ==" not in requirement:
                    needed(re.match(r"[A-Za-z0-9._-]+", requirement).group(0), seen)
        return seen

    print(json.dumps({
        "client_file": pachyderm_client.__file__,
        "proto_file": pfs_pb2.__file__,
        "read": read,
        "commits": commits,
        "again": again,
        "missing": missing,
        "importable": {name: importlib.util.find_spec(name) is not None
                       for name in ("pachd", "pachctl", "shim", "protos", "pachyderm_client")},
        "distributions": sorted(re.sub(r"[-_.]+", "-", d.metadata["Name"]).lower()
                                for d in importlib.metadata.distributions()),
        "needed": sorted(needed("pachyderm-client", set())),
        "client_requires": importlib.metadata.requires("pachyderm-client"),
    }))
''')


def _wheel(tmp_path: Path) -> Path:
    """pachyderm-client's wheel, built from a copy of client/ (the build leaves nothing in the tree)."""
    source = tmp_path / "source"
    shutil.copytree(ROOT / "client", source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    out = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
                    "--wheel-dir", str(out), str(source)], check=True, capture_output=True, timeout=300)
    (wheel,) = out.glob("pachyderm_client-*.whl")
    return wheel


def test_the_wheel_holds_the_client_and_its_protocol_only(tmp_path: Path) -> None:
    wheel = _wheel(tmp_path)
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = next(archive.read(n).decode() for n in names if n.endswith(".dist-info/METADATA"))
    packages = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert packages == {"pachyderm_client"}
    for name in ("pachyderm_client/py.typed", "pachyderm_client/proto/pfs_pb2.py", "pachyderm_client/proto/pfs_pb2.pyi",
                 "pachyderm_client/proto/pps.proto", "pachyderm_client/proto/pps_internal_pb2_grpc.py"):
        assert name in names
    requires = sorted(re.split(r"[^A-Za-z0-9._-]", line.split(":", 1)[1].strip())[0].lower()
                      for line in metadata.splitlines() if line.startswith("Requires-Dist:"))
    assert requires == ["grpcio", "protobuf"]


def test_the_wheel_alone_in_a_fresh_virtualenv_drives_pachd(own_pachd: PachdProcess, tmp_path: Path) -> None:
    wheel = _wheel(tmp_path)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    # The versions the project runs with, so pip's cache serves them where it can.
    pins = [f"{name}=={importlib.metadata.version(name)}" for name in ("grpcio", "protobuf")]
    install = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet",
                              "--disable-pip-version-check", str(wheel), *pins],
                             capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr
    script = tmp_path / "use_the_client.py"
    script.write_text(SCRIPT)
    run = subprocess.run([str(python), str(script), own_pachd.address], cwd=tmp_path, capture_output=True,
                         text=True, timeout=120, env={"PATH": "/usr/bin:/bin"})
    assert run.returncode == 0, run.stderr
    seen = json.loads(run.stdout)
    assert Path(seen["client_file"]).is_relative_to(venv) and Path(seen["proto_file"]).is_relative_to(venv)
    assert seen["read"] == "hello from a wheel\n"
    assert seen["commits"] == ["master/0"]
    assert seen["again"] == ["AlreadyExistsError", "ALREADY_EXISTS", True]
    assert seen["missing"] == "NOT_FOUND"
    assert seen["importable"] == {"pachd": False, "pachctl": False, "shim": False, "protos": False,
                                  "pachyderm_client": True}
    # Nothing in the virtualenv but the client and what grpcio and protobuf bring.
    assert [re.split(r"[^A-Za-z0-9._-]", r)[0] for r in seen["client_requires"]] == ["grpcio", "protobuf"]
    assert seen["distributions"] == seen["needed"]
