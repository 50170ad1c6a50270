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
