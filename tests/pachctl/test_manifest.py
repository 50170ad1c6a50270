"""The manifest reader: the v1.2 forms it accepts and the errors it names."""

from __future__ import annotations

from pathlib import Path

import pytest

from pachctl.manifest import ManifestError, read_jobs, read_pipelines
from protos import pps_pb2

EXAMPLE = Path(__file__).resolve().parents[2].parent / "shared" / "examples" / "fruit_stand" / "pipeline.json"


def test_fruit_stand_manifest() -> None:
    filter_, sum_ = read_pipelines(EXAMPLE.read_text())
    assert filter_.pipeline.name == "filter" and sum_.pipeline.name == "sum"
    assert list(filter_.transform.cmd) == ["sh"] and len(filter_.transform.stdin) == 3
    assert filter_.parallelism_spec.constant == 1
    assert (filter_.inputs[0].method.partition, filter_.inputs[0].method.incremental) == (pps_pb2.BLOCK, pps_pb2.DIFF)
    assert (sum_.inputs[0].method.partition, sum_.inputs[0].method.incremental) == (pps_pb2.FILE, pps_pb2.DIFF)
    assert sum_.inputs[0].repo.name == "filter"


@pytest.mark.parametrize("alias, partition, incremental", [
    ("map", pps_pb2.BLOCK, pps_pb2.DIFF), ("reduce", pps_pb2.FILE, pps_pb2.NONE),
    ("incremental_reduce", pps_pb2.FILE, pps_pb2.DIFF), ("global", pps_pb2.REPO, pps_pb2.NONE),
])
def test_method_aliases(alias: str, partition: int, incremental: int) -> None:
    (request,) = read_pipelines('{"pipeline": {"name": "p"}, "transform": {"cmd": ["true"]},'
                                f' "inputs": [{{"repo": {{"name": "d"}}, "method": "{alias}"}}]}}')
    assert (request.inputs[0].method.partition, request.inputs[0].method.incremental) == (partition, incremental)


def test_camel_case_strings_for_numbers_and_old_parallelism() -> None:
    text = """{"pipeline": {"name": "p"}, "transform": {"cmd": ["sh"], "acceptReturnCode": ["1", 2]},
              "parallelismSpec": {"strategy": "COEFFICIENT", "coefficient": "0.5"},
              "inputs": [{"repo": {"name": "d"}, "runEmpty": true}]}
             {"pipeline": {"name": "q"}, "transform": {"cmd": ["sh"]}, "parallelism": "4"}"""
    first, second = read_pipelines(text)
    assert list(first.transform.accept_return_code) == [1, 2]
    assert first.parallelism_spec.strategy == pps_pb2.ParallelismSpec.COEFFICIENT
    assert first.parallelism_spec.coefficient == 0.5
    assert first.inputs[0].run_empty
    assert (first.inputs[0].method.partition, first.inputs[0].method.incremental) == (pps_pb2.BLOCK, pps_pb2.DIFF)
    assert second.parallelism_spec.constant == 4 and not second.inputs


@pytest.mark.parametrize("text, where", [
    ('{"pipeline": {"name": "p"},\n  "transform": {"cmd": ["sh"]\n}', "line 3, column 2"),
    ('{"pipeline": {"name": "p"}}\n{"pipeline": ', "line 2, column 14"),
    ('{"pipeline": {"name": "p"} "x": 1}', "line 1, column 28"),
])
def test_syntax_errors_say_line_and_column(text: str, where: str) -> None:
    with pytest.raises(ManifestError) as caught:
        read_pipelines(text)
    assert where in str(caught.value)


@pytest.mark.parametrize("text, field", [
    ('{"pipeline": {"name": "p"}, "transfrom": {}}', "transfrom"),
    ('{"pipeline": {"name": "p"}, "transform": {"cmd": "sh"}}', "transform.cmd"),
    ('{"pipeline": {"name": "p"}, "parallelism_spec": {"constant": "many"}}', "parallelism_spec.constant"),
    ('{"pipeline": {"name": "p"}, "inputs": [{"repo": {"name": "d"}, "method": "sideways"}]}', "inputs[0].method"),
    ('{"pipeline": {"name": "p"}, "inputs": [{"repo": {"name": "d"}, "method": {"partition": "ROW"}}]}',
     "inputs[0].method.partition"),
    ('{"pipeline": {"name": "p"}, "inputs": {"repo": "d"}}', "inputs"),
    ('{"pipeline": {}}', "pipeline.name"),
    ('[{"pipeline": {"name": "p"}}]', "line 1, column 1"),
])
def test_bad_fields_are_named(text: str, field: str) -> None:
    with pytest.raises(ManifestError) as caught:
        read_pipelines(text)
    assert field in str(caught.value)


def test_empty_manifest_is_an_error() -> None:
    with pytest.raises(ManifestError):
        read_pipelines("  \n ")


def test_job_specs() -> None:
    (job,) = read_jobs('{"transform": {"cmd": ["sh"]}, "inputs": [{"commit": {"repo": {"name": "d"}, "id": "master/0"},'
                       ' "method": "reduce"}], "parentJob": {"id": "abc"}}')
    assert job.inputs[0].commit.repo.name == "d" and job.inputs[0].commit.id == "master/0"
    assert job.inputs[0].method.partition == pps_pb2.FILE and job.parent_job.id == "abc"
