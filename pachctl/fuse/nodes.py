"""The mounted tree's nodes and their inode numbers.

The tree is <mount>/<repo>/<commit>/<path> (`pachctl mount`), or
<mount>/<alias>/<path> for a list of commit mounts (a pod's /pfs). A commit
directory is named by its ID with the slash turned into a dash (master-0), as
in v1.2; a branch name stands for the branch's newest commit.
"""

from __future__ import annotations

import enum
import itertools
import re
from dataclasses import dataclass, field

from pachyderm_client.proto import pfs_pb2

ROOT_INODE = 1


class Kind(enum.Enum):
    ROOT = "root"
    REPO = "repo"
    DIR = "dir"  # a commit's root, or a directory inside a commit
    FILE = "file"


@dataclass(frozen=True, slots=True)
class View:
    """How one commit is seen: narrowed to a shard and to changes since a commit.

    Hashable (it keys the read cache), so the shard is kept as plain numbers.
    """

    shard_numbers: tuple[int, int, int, int] | None = None  # file number and modulus, block number and modulus
    from_commit: str = ""
    full_file: bool = False

    @classmethod
    def of(cls, shard: pfs_pb2.Shard | None, from_commit: str = "", full_file: bool = False) -> View:
        numbers = None
        if shard is not None and (shard.file_modulus or shard.block_modulus):
            numbers = (shard.file_number, shard.file_modulus, shard.block_number, shard.block_modulus)
        return cls(numbers, from_commit, full_file)

    @property
    def shard(self) -> pfs_pb2.Shard | None:
        if self.shard_numbers is None:
            return None
        file_number, file_modulus, block_number, block_modulus = self.shard_numbers
        return pfs_pb2.Shard(file_number=file_number, file_modulus=file_modulus, block_number=block_number,
                             block_modulus=block_modulus)


@dataclass(eq=False)
class Node:
    inode: int
    kind: Kind
    repo: str = ""
    commit: str = ""  # the commit ID (or branch) requests name
    path: str = "/"
    view: View = field(default_factory=View)
    writable: bool = False  # an open commit: files can be written
    immutable: bool = False  # a finished commit named by its ID: attributes never change
    size: int = 0  # in PFS, as far as the mount knows
    mtime: float = 0.0
    unsent: int = 0  # written through open handles, not yet in PFS (part of the size the mount shows)
    sending: int = 0  # appends in flight to pachd
    changed: int = 0  # the mount's clock at its last change of this file (sizes fetched before are stale)


def commit_dir_name(commit_id: str) -> str:
    return commit_id.replace("/", "-")


def commit_id_candidates(name: str) -> list[str]:
    """The commit IDs a directory name may stand for: branch-N, then a branch name."""
    match = re.fullmatch(r"(.+)-(\d+)", name)
    return [f"{match.group(1)}/{match.group(2)}", name] if match else [name]


class Inodes:
    """Gives each (repo, commit, path) one inode for the life of the mount."""

    def __init__(self) -> None:
        self._next = itertools.count(ROOT_INODE + 1)
        self._by_key: dict[tuple[str, str, str, str], Node] = {}
        self._keys: dict[int, tuple[str, str, str, str]] = {}
        self._by_inode: dict[int, Node] = {ROOT_INODE: Node(ROOT_INODE, Kind.ROOT)}

    def get(self, inode: int) -> Node | None:
        return self._by_inode.get(inode)

    def node(self, kind: Kind, repo: str, commit: str = "", path: str = "/", alias: str = "") -> Node:
        key = (alias, repo, commit, path if kind is not Kind.REPO else "")
        found = self._by_key.get(key)
        if found is None or found.kind is not kind:
            found = Node(next(self._next), kind, repo, commit, path)
            self._by_key[key] = found
            self._keys[found.inode] = key
            self._by_inode[found.inode] = found
        return found

    def forget(self, node: Node) -> None:
        """The path is gone (deleted): a new file there gets a new inode."""
        key = self._keys.pop(node.inode, None)
        if key is not None and self._by_key.get(key) is node:
            del self._by_key[key]
