"""Choosing a job's input commits so that their provenance agrees.

Each commit reaches back to the commits it was made from (its own key and
its transitive provenance). A set of input commits is consistent when, for
every repo two of them both reach, they reach the same commits of it: a
pipeline reading A and B, where B is made from A, sees each commit of A with
B's output for that very commit.

Given the commit that triggers a job, the inputs that share an upstream repo
with what is chosen so far take their newest commit that agrees with it; an
input sharing nothing takes its newest commit finished by then. If an input
has no such commit (yet), no job is made for this trigger: the commit that
completes the set triggers it later.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pachd.pfs.records import CommitKey, CommitRecord

Reach = dict[str, frozenset[CommitKey]]
"""repo -> the commits of that repo a commit was made from (itself included)."""


def reach(commit: CommitRecord) -> Reach:
    found: dict[str, set[CommitKey]] = {commit.repo: {commit.key}}
    for key in commit.provenance:
        found.setdefault(key[0], set()).add(key)
    return {repo: frozenset(keys) for repo, keys in found.items()}


def agrees(a: Reach, b: Reach) -> bool:
    return all(a[repo] == b[repo] for repo in a.keys() & b.keys())


def order(commit: CommitRecord) -> tuple[float, tuple[tuple[str, int], ...]]:
    """The order `ready` lists commits in: by when they finished."""
    return (commit.finished or 0.0, commit.clock)


def choose(
    trigger: CommitRecord, repos: Sequence[str], ready: Mapping[str, Sequence[CommitRecord]],
    upstream: Mapping[str, frozenset[str]],
) -> list[CommitRecord] | None:
    """One commit per repo of `repos` (in that order), or None if no consistent set exists yet.

    `ready[repo]` are the usable commits of each input, in `order`;
    `upstream[repo]` the repos its commits can reach (itself included).
    """
    chosen = {trigger.repo: trigger}
    seen = reach(trigger)
    remaining = [r for r in repos if r != trigger.repo]
    while remaining:
        related = [r for r in remaining if upstream.get(r, frozenset({r})) & seen.keys()]
        repo = related[0] if related else remaining[0]
        bound = max((c.finished or 0.0) for c in chosen.values())
        commit = None
        for candidate in reversed(ready.get(repo, ())):
            if not related and (candidate.finished or 0.0) > bound:
                continue
            if agrees(seen, reach(candidate)):
                commit = candidate
                break
        if commit is None:
            return None
        chosen[repo] = commit
        for r, keys in reach(commit).items():
            seen[r] = seen.get(r, frozenset()) | keys
        remaining.remove(repo)
    return [chosen[r] for r in repos]
