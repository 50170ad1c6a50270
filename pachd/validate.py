"""Pure checks of request values, called by servicers before any domain code.

Each returns the normalised value or raises an InvalidArgument subclass whose
message says what is allowed. The domain layer assumes values passed these.
"""

from __future__ import annotations

import re

from pachd.errors import InvalidArgument, InvalidCommitID, InvalidName, InvalidPath, TooLarge

_NAME = re.compile(r"[A-Za-z0-9_]+")
_BRANCH = re.compile(r"[A-Za-z0-9_.\-]+")
MAX_NAME_LENGTH = 200
MAX_PATH_LENGTH = 4096  # a component may be as long as the path (v1.2.3 stored 1,300-byte names)
MAX_PATH_DEPTH = 256
"""Directories nest at most this deep: trees are built and walked one level per call."""


def repo_name(name: str, *, what: str = "repo") -> str:
    """A repo (or pipeline) name: letters, digits and underscores only."""
    if not name:
        raise InvalidName(f"{what} name is empty; give a name of letters, digits and _")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidName(f"{what} name is {len(name)} characters long; the limit is {MAX_NAME_LENGTH}")
    if not _NAME.fullmatch(name):
        raise InvalidName(f"{what} name ({name}) invalid: only alphanumeric and underscore characters allowed")
    return name


def branch_name(name: str) -> str:
    """A branch name: letters, digits, '_', '-' and '.'."""
    if not name or len(name) > MAX_NAME_LENGTH or not _BRANCH.fullmatch(name):
        raise InvalidCommitID(
            f"branch name {name!r} is invalid: use letters, digits, '_', '-' or '.' (at most {MAX_NAME_LENGTH})"
        )
    return name


def commit_id(commit: str) -> tuple[str, int | None]:
    """Splits a commit ID into (branch, number); number is None for a bare branch.

    Commit IDs are `branch/number` (e.g. master/0) or a branch name, which
    means the branch's newest commit.
    """
    if not commit:
        raise InvalidCommitID("commit ID is empty; give a branch (master) or a commit (master/0)")
    branch, slash, number = commit.partition("/")
    if not slash:
        return branch_name(branch), None
    if not number.isdigit() or len(number) > 19:
        raise InvalidCommitID(f"commit ID {commit!r} is invalid: expected branch/number, e.g. master/0")
    return branch_name(branch), int(number)


def file_path(path: str, *, allow_root: bool = True) -> str:
    """Normalises a file path to '/a/b' form; '' and '/' mean the root.

    Rejects NUL bytes, '..' and '.' components (no escaping the commit), over-long
    paths, and paths nested deeper than MAX_PATH_DEPTH.
    """
    if (path[:1] == "/" and path[-1] != "/" and "//" not in path and "/." not in path and "\x00" not in path
            and len(path) <= MAX_PATH_LENGTH and path.count("/") <= MAX_PATH_DEPTH):
        return path  # already in '/a/b' form, no component empty or a dot (names starting with one go below)
    if "\x00" in path:
        raise InvalidPath("file path contains a NUL byte")
    if len(path) > MAX_PATH_LENGTH:
        raise InvalidPath(f"file path is {len(path)} characters long; the limit is {MAX_PATH_LENGTH}")
    parts = [p for p in path.split("/") if p]
    if len(parts) > MAX_PATH_DEPTH:
        raise InvalidPath(f"file path {path[:40]!r}... has {len(parts)} components; the limit is {MAX_PATH_DEPTH}")
    for part in parts:
        if part in (".", ".."):
            raise InvalidPath(f"file path {path!r} contains {part!r}; paths may not step outside their commit")
    if not parts and not allow_root:
        raise InvalidPath("file path is empty; name a file inside the commit")
    return "/" + "/".join(parts)


def non_negative(value: int, what: str) -> int:
    if value < 0:
        raise InvalidArgument(f"{what} is {value}; it must be zero or more")
    return value


def bounded(size: int, limit: int, what: str) -> int:
    if size > limit:
        raise TooLarge(f"{what} is {size} bytes; the limit is {limit}")
    return size
