"""Where PFS keeps its metadata in the KV store. No other module builds keys.

    pfs/repos/<repo>                               RepoRecord
    pfs/branches/<repo>/<branch>                   BranchRecord (the head number)
    pfs/commits/<repo>/<branch>/<n>                CommitRecord
    pfs/diffs/<repo>/<branch>/<n>/<path>           FileDiff of an open commit
    pfs/diffs/<repo>/<branch>/<n>/<path>\0<write>   FileDiff: one write's append to that file
    pfs/resets/<repo>/<branch>/<n>                 FileDiff: the open commit deleted "/"
    pfs/provenance/<repo>/<branch>/<n>/<repo2>/<branch2>/<n2>
                                                   (empty) <repo2>/<branch2>/<n2> has
                                                   <repo>/<branch>/<n> in its provenance
Paths are stored without their leading "/"; "<path>" of the root is "".
Commit numbers are zero-padded so keys sort in commit order.
"""

from __future__ import annotations

ROOT = "pfs/"
_PAD = 20


def _n(number: int) -> str:
    return str(number).zfill(_PAD)


def repo(name: str) -> str:
    return f"pfs/repos/{name}"


def repos() -> str:
    return "pfs/repos/"


def branch(repo: str, branch: str) -> str:
    return f"pfs/branches/{repo}/{branch}"


def branches(repo: str) -> str:
    return f"pfs/branches/{repo}/"


def commit(repo: str, branch: str, number: int) -> str:
    return f"pfs/commits/{repo}/{branch}/{_n(number)}"


def commits(repo: str) -> str:
    return f"pfs/commits/{repo}/"


def all_commits() -> str:
    return "pfs/commits/"


def diff(repo: str, branch: str, number: int, path: str) -> str:
    """`path` is normalised ('/a/b'); the root is '/'."""
    return f"pfs/diffs/{repo}/{branch}/{_n(number)}/{path[1:]}"


def diffs(repo: str, branch: str, number: int, under: str = "/") -> str:
    """Prefix of the diffs of one commit strictly below directory `under`."""
    base = f"pfs/diffs/{repo}/{branch}/{_n(number)}/"
    return base if under == "/" else f"{base}{under[1:]}/"


APPEND_SEPARATOR = "\x00"
"""Between a file's diff key and a write's ID. Paths never hold it, and it sorts
below every other character, so a file's appends follow its diff key at once."""


def appended(repo: str, branch: str, number: int, path: str, write: str) -> str:
    """One write's append to the file at `path` (whose diff key must exist)."""
    return f"{diff(repo, branch, number, path)}{APPEND_SEPARATOR}{write}"


def appends(repo: str, branch: str, number: int, path: str) -> str:
    """Prefix of every append to the file at `path`."""
    return f"{diff(repo, branch, number, path)}{APPEND_SEPARATOR}"


def diff_path(key: str) -> str:
    """The normalised path of a diff key (or of an append's key)."""
    # pfs/diffs/<repo>/<branch>/<n>/<path>: the path is everything after the 5th '/'.
    return "/" + key.split("/", 5)[5].split(APPEND_SEPARATOR, 1)[0]


def append_write(key: str) -> str:
    """The write ID of an append's key; "" for a plain diff key."""
    return key.partition(APPEND_SEPARATOR)[2]


def repo_diffs(repo: str) -> str:
    return f"pfs/diffs/{repo}/"


def root_reset(repo: str, branch: str, number: int) -> str:
    # Kept outside the commit's diff prefix: a transaction may not both
    # delete a range and put a key inside it (etcd refuses).
    return f"pfs/resets/{repo}/{branch}/{_n(number)}"


def repo_resets(repo: str) -> str:
    return f"pfs/resets/{repo}/"


def provenance_entry(upstream: tuple[str, str, int], downstream: tuple[str, str, int]) -> str:
    (r1, b1, n1), (r2, b2, n2) = upstream, downstream
    return f"pfs/provenance/{r1}/{b1}/{_n(n1)}/{r2}/{b2}/{_n(n2)}"


def downstream_of(repo: str, branch: str, number: int) -> str:
    """Prefix of the provenance entries naming commits downstream of one commit."""
    return f"pfs/provenance/{repo}/{branch}/{_n(number)}/"


def repo_provenance(repo: str) -> str:
    return f"pfs/provenance/{repo}/"


def downstream_commit(key: str) -> tuple[str, str, int]:
    """(repo, branch, number) of the downstream commit a provenance entry names."""
    parts = key.split("/")
    return parts[-3], parts[-2], int(parts[-1])


def commit_from_key(key: str) -> tuple[str, str, int]:
    """(repo, branch, number) of a commit key (or of a root reset key)."""
    _, _, repo, branch, number = key.split("/")
    return repo, branch, int(number)


# -- reading keys back (the consistency checker walks every key) ---------------


def all_branches() -> str:
    return "pfs/branches/"


def all_diffs() -> str:
    return "pfs/diffs/"


def all_resets() -> str:
    return "pfs/resets/"


def all_provenance() -> str:
    return "pfs/provenance/"


def branch_from_key(key: str) -> tuple[str, str]:
    """(repo, branch) of a branch key."""
    _, _, repo, branch = key.split("/")
    return repo, branch


def diff_from_key(key: str) -> tuple[tuple[str, str, int], str]:
    """((repo, branch, number), normalised path) of a diff key."""
    _, _, repo, branch, number, _ = key.split("/", 5)
    return (repo, branch, int(number)), diff_path(key)


def provenance_from_key(key: str) -> tuple[tuple[str, str, int], tuple[str, str, int]]:
    """(upstream, downstream) commits of a provenance index entry."""
    _, _, r1, b1, n1, r2, b2, n2 = key.split("/")
    return (r1, b1, int(n1)), (r2, b2, int(n2))


# -- writes in flight (kept outside pfs/, which delete-all clears) -------------

UPLOADS = "uploads/"


def upload(replica: str) -> str:
    """The time the oldest write still running on `replica` began (absent: none)."""
    return f"uploads/{replica}"
