"""Where the shared example manifests and data live (../shared/examples, from any checkout)."""

from __future__ import annotations

from pathlib import Path


def example(name: str) -> Path:
    """The example directory `name` (e.g. fruit_stand), found from this checkout upwards.

    A checkout may sit beside `shared` (/work/main) or deeper (/work/wt/<branch>).
    """
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "shared" / "examples" / name
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"no shared/examples/{name} above {Path(__file__).parent}")


def fruit_stand_first_commit(address: str) -> str:
    """The tutorial's first steps through pachctl against `address` (repo data, set1,
    the pipelines, flush-commit): the ID of the sum commit that flush-commit names."""
    from tests.support.cli import pachctl  # pachctl's main, imported only by tests that run it

    fruit_stand = example("fruit_stand")
    assert pachctl(address, "create-repo", "data").code == 0
    put = pachctl(address, "put-file", "data", "master", "sales", "-c", "-f", str(fruit_stand / "set1.txt"))
    assert put.code == 0, put.err
    created = pachctl(address, "create-pipeline", "-f", str(fruit_stand / "pipeline.json"))
    assert created.code == 0, created.err
    flushed = pachctl(address, "flush-commit", "data/master/0")
    assert flushed.code == 0, flushed.err
    sum_commit = next(line.split()[1] for line in flushed.out.splitlines() if line.split()[1].startswith("sum/"))
    return sum_commit.split("/", 1)[1]
