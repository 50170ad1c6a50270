"""The deepest chain of pipelines: how many jobs one commit sets off one after another."""

from __future__ import annotations

from pachd.pps.pipelines import chain_depth
from pachd.pps.specs import Parallelism, PipelineInput, PipelineRecord, Transform


def _pipeline(name: str, *inputs: str, stopped: bool = False) -> PipelineRecord:
    return PipelineRecord(name, Transform(cmd=("sh",)), Parallelism(constant=1),
                          tuple(PipelineInput(repo) for repo in inputs), 0.0, stopped=stopped)


def test_a_chain_counts_each_pipeline_reading_the_one_before() -> None:
    assert chain_depth([]) == 0
    assert chain_depth([_pipeline("a", "data")]) == 1
    chain = [_pipeline("s1", "data"), _pipeline("s2", "s1"), _pipeline("s3", "s2")]
    assert chain_depth(chain) == 3
    # A join takes its longest input's chain; side branches and other roots do not add up.
    assert chain_depth([*chain, _pipeline("side", "s1"), _pipeline("join", "s3", "side", "other")]) == 4
    assert chain_depth([*chain, _pipeline("b", "data"), _pipeline("c", "data")]) == 3


def test_a_stopped_pipeline_breaks_its_chain() -> None:
    chain = [_pipeline("s1", "data"), _pipeline("s2", "s1", stopped=True), _pipeline("s3", "s2")]
    assert chain_depth(chain) == 1
