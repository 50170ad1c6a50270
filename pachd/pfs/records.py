"""The PFS metadata records kept in the KV store, and their JSON encoding.

Records are frozen value objects; changing one means writing a new one in a
transaction that compares the old one's revision.
"""

from __future__ import annotations

import dataclasses
import enum
import json
from dataclasses import dataclass
from typing import Any

CommitKey = tuple[str, str, int]
"""(repo, branch, number): a commit's identity."""


def commit_id(branch: str, number: int) -> str:
    return f"{branch}/{number}"


@dataclass(frozen=True, slots=True)
class BlockRef:
    """Bytes [lower, upper) of the block named by `hash` (SHA-512 hex)."""

    hash: str
    lower: int
    upper: int

    @property
    def size(self) -> int:
        return self.upper - self.lower


def refs_size(refs: tuple[BlockRef, ...]) -> int:
    """The bytes `refs` name (one ref, or a list, not a generator: this runs for every file a tree is built of)."""
    if len(refs) == 1:
        return refs[0].upper - refs[0].lower
    return sum([ref.upper - ref.lower for ref in refs])


@dataclass(frozen=True, slots=True)
class RepoRecord:
    name: str
    created: float
    provenance: tuple[str, ...]  # the immediate provenance, as created
    full_provenance: tuple[str, ...]  # transitive, sorted
    size_bytes: int = 0


@dataclass(frozen=True, slots=True)
class BranchRecord:
    head: int  # number of the newest commit on the branch


@dataclass(frozen=True, slots=True)
class CommitRecord:
    repo: str
    branch: str
    number: int
    # Vector clock: (branch, number) per branch on the way from the first
    # commit; A is an ancestor of B iff A's clock is a prefix of B's with the
    # last number no larger. See is_ancestor.
    clock: tuple[tuple[str, int], ...]
    started: float
    provenance: tuple[CommitKey, ...] = ()  # transitive
    finished: float | None = None
    finishing: bool = False  # finish has begun; writes are refused
    cancelled: bool = False
    archived: bool = False
    size_bytes: int = 0
    root: str = ""  # tree root node once finished; "" is the empty tree
    # Set when finishing began as a squash: the finished tree is the parent's with these
    # commits' changes (same repo; see squash.py), and the commit's own pending diffs are dropped.
    squash_from: tuple[str, ...] = ()
    # The commit this one's changes are to be squashed into (a job pod's commit names the
    # job's output commit): its tree's changed entries name that commit, as the squash would.
    squash_into: str = ""

    @property
    def id(self) -> str:
        return commit_id(self.branch, self.number)

    @property
    def key(self) -> CommitKey:
        return (self.repo, self.branch, self.number)

    @property
    def parent(self) -> tuple[str, int] | None:
        """(branch, number) of the parent commit, if any."""
        branch, number = self.clock[-1]
        if number > 0:
            return (branch, number - 1)
        if len(self.clock) > 1:
            return self.clock[-2]
        return None

    @property
    def is_open(self) -> bool:
        return self.finished is None


def is_ancestor(a: tuple[tuple[str, int], ...], b: tuple[tuple[str, int], ...]) -> bool:
    """Whether the commit with clock `a` is `b` or an ancestor of it."""
    if len(a) > len(b) or a[:-1] != b[: len(a) - 1]:
        return False
    (branch_a, n_a), (branch_b, n_b) = a[-1], b[len(a) - 1]
    return branch_a == branch_b and n_a <= n_b


class FileKind(enum.Enum):
    FILE = "f"
    DIR = "d"
    NONE = "n"  # deleted


@dataclass(frozen=True, slots=True)
class FileDiff:
    """What an open commit did to one path.

    `delete` means the path was deleted (or truncated) first; then `refs` were
    appended. kind NONE with delete is a plain deletion; DIR is a mkdir.
    """

    kind: FileKind
    delete: bool = False
    refs: tuple[BlockRef, ...] = ()
    modified: float = 0.0

    @property
    def size(self) -> int:
        return refs_size(self.refs)


# -- encoding -----------------------------------------------------------------


def _refs_out(refs: tuple[BlockRef, ...]) -> list[list[Any]]:
    return [[r.hash, r.lower, r.upper] for r in refs]


def _refs_in(raw: list[list[Any]]) -> tuple[BlockRef, ...]:
    return tuple(BlockRef(h, lo, hi) for h, lo, hi in raw)


def encode(record: RepoRecord | BranchRecord | CommitRecord | FileDiff) -> bytes:
    if isinstance(record, FileDiff):
        data: dict[str, Any] = {
            "k": record.kind.value,
            "d": record.delete,
            "r": _refs_out(record.refs),
            "m": record.modified,
        }
    else:
        data = dataclasses.asdict(record)
    return json.dumps(data, separators=(",", ":")).encode()


def decode_repo(raw: bytes) -> RepoRecord:
    d = json.loads(raw)
    return RepoRecord(
        name=d["name"],
        created=d["created"],
        provenance=tuple(d["provenance"]),
        full_provenance=tuple(d["full_provenance"]),
        size_bytes=d["size_bytes"],
    )


def decode_branch(raw: bytes) -> BranchRecord:
    return BranchRecord(head=json.loads(raw)["head"])


def decode_commit(raw: bytes) -> CommitRecord:
    d = json.loads(raw)
    d["clock"] = tuple((b, n) for b, n in d["clock"])
    d["provenance"] = tuple((r, b, n) for r, b, n in d["provenance"])
    d["squash_from"] = tuple(d.get("squash_from", ()))
    return CommitRecord(**d)


def decode_diff(raw: bytes) -> FileDiff:
    d = json.loads(raw)
    return FileDiff(kind=FileKind(d["k"]), delete=d["d"], refs=_refs_in(d["r"]), modified=d["m"])
