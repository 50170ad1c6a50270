"""Choosing a job's input commits whose provenance agrees (pachd/pps/consistency.py), as plain values."""

from __future__ import annotations

from pachd.pfs.records import CommitKey, CommitRecord
from pachd.pps.consistency import choose, order


def commit(repo: str, n: int, finished: float, provenance: tuple[CommitKey, ...] = ()) -> CommitRecord:
    return CommitRecord(repo, "master", n, (("master", n),), 0.0, provenance, finished=finished)


def test_a_derived_input_is_paired_with_the_output_of_the_same_commit() -> None:
    a0, a1 = commit("a", 0, 1.0), commit("a", 1, 3.0)
    b0 = commit("b", 0, 2.0, (a0.key,))
    ready = {"a": [a0, a1], "b": [b0]}
    upstream = {"a": frozenset({"a"}), "b": frozenset({"b", "a"})}
    assert choose(a1, ["a", "b"], ready, upstream) is None  # b's output for a1 is not there yet
    b1 = commit("b", 1, 4.0, (a1.key,))
    ready["b"].append(b1)
    assert choose(a1, ["a", "b"], ready, upstream) == [a1, b1]
    assert choose(b1, ["a", "b"], ready, upstream) == [a1, b1]  # the same job, whichever triggers
    assert choose(b0, ["a", "b"], ready, upstream) == [a0, b0]


def test_an_unrelated_input_takes_its_newest_commit_finished_by_then() -> None:
    a0 = commit("a", 0, 1.0)
    b0 = commit("b", 0, 5.0, (a0.key,))
    d0, d1, d2 = commit("d", 0, 0.5), commit("d", 1, 4.0), commit("d", 2, 6.0)
    ready = {"a": [a0], "b": [b0], "d": sorted([d0, d1, d2], key=order)}
    upstream = {"a": frozenset({"a"}), "b": frozenset({"b", "a"}), "d": frozenset({"d"})}
    # Triggered by a0 or by b0, the set is the same: d as of when b0 (the last of a0's set) finished.
    assert choose(a0, ["a", "b", "d"], ready, upstream) == [a0, b0, d1]
    assert choose(b0, ["a", "b", "d"], ready, upstream) == [a0, b0, d1]
    assert choose(d0, ["a", "b", "d"], {**ready, "a": []}, upstream) is None  # a has no data yet
