"""The manifest reader: JSON streams into CreatePipelineRequest / CreateJobRequest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pachctl.manifest import ManifestError, read_job_request, read_pipeline_requests
from pachyderm_client.proto import pps_pb2

_REPO = Path(__file__).resolve().parents[2]
FRUIT_STAND = next(
    (
        candidate / "examples" / "fruit_stand" / "pipeline.json"
        for candidate in (_REPO.parent / "shared", _REPO.parents[1] / "shared", Path("/work/shared"))
        if (candidate / "examples" / "fruit_stand" / "pipeline.json").exists()
    ),
    Path("/nonexistent/shared/examples/fruit_stand/pipeline.json"),
)

MAP = pps_pb2.Method(partition=pps_pb2.BLOCK, incremental=pps_pb2.DIFF)
REDUCE = pps_pb2.Method(partition=pps_pb2.FILE, incremental=pps_pb2.NONE)
INCREMENTAL_REDUCE = pps_pb2.Method(partition=pps_pb2.FILE, incremental=pps_pb2.DIFF)
GLOBAL = pps_pb2.Method(partition=pps_pb2.REPO, incremental=pps_pb2.NONE)


def one(text: str) -> pps_pb2.CreatePipelineRequest:
    requests = read_pipeline_requests(text)
    assert len(requests) == 1
    return requests[0]


def pipeline(**fields: object) -> str:
    return json.dumps({"pipeline": {"name": "p"}, **fields})


def error_of(text: str) -> ManifestError:
    with pytest.raises(ManifestError) as caught:
        read_pipeline_requests(text)
    return caught.value


# -- the fruit stand example ------------------------------------------------------


@pytest.mark.skipif(not FRUIT_STAND.exists(), reason="shared examples not present")
def test_fruit_stand_manifest_has_two_pipelines() -> None:
    requests = read_pipeline_requests(FRUIT_STAND.read_text())
    assert [r.pipeline.name for r in requests] == ["filter", "sum"]
    filter_, sum_ = requests
    assert list(filter_.transform.cmd) == ["sh"]
    assert len(filter_.transform.stdin) == 3
    assert filter_.parallelism_spec == pps_pb2.ParallelismSpec(
        strategy=pps_pb2.ParallelismSpec.CONSTANT, constant=1
    )
    assert filter_.inputs[0].repo.name == "data"
    assert filter_.inputs[0].method == MAP
    assert sum_.inputs[0].repo.name == "filter"
    assert sum_.inputs[0].method == INCREMENTAL_REDUCE


def test_objects_may_follow_each_other_without_whitespace() -> None:
    text = '{"pipeline":{"name":"a"}}{"pipeline":{"name":"b"}}\n\n  {"pipeline":{"name":"c"}}'
    assert [r.pipeline.name for r in read_pipeline_requests(text)] == ["a", "b", "c"]


def test_empty_text_holds_no_pipeline() -> None:
    assert read_pipeline_requests("  \n\t ") == []


def test_byte_order_mark_is_ignored() -> None:
    assert one("\ufeff" + pipeline()).pipeline.name == "p"


# -- names, numbers, methods -------------------------------------------------------


def test_camel_case_and_snake_case_names_are_both_accepted() -> None:
    camel = one(
        pipeline(
            parallelismSpec={"strategy": "COEFFICIENT", "coefficient": 0.5},
            transform={"acceptReturnCode": [1, 2], "secrets": [{"name": "s", "mountPath": "/m"}]},
            inputs=[{"repo": {"name": "in"}, "runEmpty": True}],
        )
    )
    snake = one(
        pipeline(
            parallelism_spec={"strategy": "COEFFICIENT", "coefficient": 0.5},
            transform={"accept_return_code": [1, 2], "secrets": [{"name": "s", "mount_path": "/m"}]},
            inputs=[{"repo": {"name": "in"}, "run_empty": True}],
        )
    )
    assert camel == snake
    assert camel.parallelism_spec.coefficient == 0.5
    assert list(camel.transform.accept_return_code) == [1, 2]
    assert camel.transform.secrets[0].mount_path == "/m"
    assert camel.inputs[0].run_empty


def test_numbers_may_be_strings() -> None:
    request = one(
        pipeline(
            parallelism_spec={"strategy": "CONSTANT", "constant": "3"},
            transform={"accept_return_code": ["1", " 2 "]},
        )
    )
    assert request.parallelism_spec.constant == 3
    assert list(request.transform.accept_return_code) == [1, 2]


def test_double_may_be_a_string() -> None:
    request = one(pipeline(parallelism_spec={"strategy": "COEFFICIENT", "coefficient": "1.5"}))
    assert request.parallelism_spec.coefficient == 1.5


def test_integral_float_is_an_integer() -> None:
    assert one(pipeline(parallelism_spec={"constant": 4.0})).parallelism_spec.constant == 4


@pytest.mark.parametrize(
    ("alias", "expected"),
    [("map", MAP), ("reduce", REDUCE), ("incremental_reduce", INCREMENTAL_REDUCE), ("global", GLOBAL)],
)
def test_method_aliases(alias: str, expected: pps_pb2.Method) -> None:
    request = one(pipeline(inputs=[{"repo": {"name": "in"}, "method": alias}]))
    assert request.inputs[0].method == expected


def test_input_without_method_gets_map() -> None:
    request = one(pipeline(inputs=[{"repo": {"name": "in"}}, {"repo": {"name": "x"}, "method": None}]))
    assert [i.method for i in request.inputs] == [MAP, MAP]


def test_method_object_with_enum_names() -> None:
    request = one(
        pipeline(inputs=[{"repo": {"name": "in"}, "method": {"partition": "REPO", "incremental": "FULL"}}])
    )
    assert request.inputs[0].method == pps_pb2.Method(partition=pps_pb2.REPO, incremental=pps_pb2.FULL)


def test_method_object_accepts_lower_case_and_the_documented_file_incremental() -> None:
    request = one(
        pipeline(inputs=[{"repo": {"name": "in"}, "method": {"partition": "file", "incremental": "FILE"}}])
    )
    assert request.inputs[0].method == pps_pb2.Method(partition=pps_pb2.FILE, incremental=pps_pb2.FULL)


def test_enum_numbers_are_accepted() -> None:
    request = one(pipeline(inputs=[{"repo": {"name": "in"}, "method": {"partition": 1, "incremental": 0}}]))
    assert request.inputs[0].method == REDUCE


def test_old_parallelism_field_means_constant() -> None:
    request = one(pipeline(parallelism="4"))
    assert request.parallelism_spec == pps_pb2.ParallelismSpec(
        strategy=pps_pb2.ParallelismSpec.CONSTANT, constant=4
    )
    assert one(pipeline(parallelism=2)).parallelism_spec.constant == 2


def test_old_parallelism_and_parallelism_spec_conflict() -> None:
    err = error_of(pipeline(parallelism="4", parallelism_spec={"constant": 2}))
    assert err.field == "parallelism"


def test_pipeline_without_inputs_is_fine() -> None:
    request = one(pipeline(transform={"image": "busybox", "cmd": ["true"]}))
    assert list(request.inputs) == []
    assert request.transform.image == "busybox"


def test_env_map_and_update_flags() -> None:
    request = one(pipeline(transform={"env": {"A": "1", "B": "two"}}, update=True, noArchive=True))
    assert dict(request.transform.env) == {"A": "1", "B": "two"}
    assert request.update and request.no_archive


def test_null_means_unset() -> None:
    request = one(pipeline(transform=None, inputs=None, parallelism_spec=None))
    assert not request.HasField("transform")
    assert not request.HasField("parallelism_spec")


def test_unicode_strings_survive() -> None:
    request = one(pipeline(transform={"stdin": ["echo 'héllo ✓'"]}))
    assert request.transform.stdin[0] == "echo 'héllo ✓'"


# -- jobs -----------------------------------------------------------------------------


def test_job_request_with_commit_inputs() -> None:
    text = json.dumps(
        {
            "transform": {"cmd": ["cat"]},
            "parallelism": "2",
            "inputs": [{"commit": {"repo": {"name": "in"}, "id": "master/0"}, "method": "global"}],
            "parent_job": {"id": "abc"},
        }
    )
    request = read_job_request(text)
    assert request.inputs[0].commit.repo.name == "in"
    assert request.inputs[0].commit.id == "master/0"
    assert request.inputs[0].method == GLOBAL
    assert request.parallelism_spec.constant == 2
    assert request.parent_job.id == "abc"


def test_job_input_without_method_gets_map() -> None:
    request = read_job_request('{"inputs": [{"commit": {"repo": {"name": "in"}, "id": "master/1"}}]}')
    assert request.inputs[0].method == MAP


def test_job_manifest_must_hold_exactly_one_object() -> None:
    with pytest.raises(ManifestError):
        read_job_request('{"transform": {}} {"transform": {}}')
    with pytest.raises(ManifestError):
        read_job_request("   ")


def test_job_fields_unknown_to_pipelines_are_rejected_in_pipelines() -> None:
    err = error_of(pipeline(parent_job={"id": "x"}))
    assert err.field == "parent_job"


# -- errors: syntax ---------------------------------------------------------------------


def test_syntax_error_points_at_line_and_column() -> None:
    text = '{\n  "pipeline": {"name": "p"},\n  "transform": {"cmd": ["sh",]}\n}'
    err = error_of(text)
    assert (err.document, err.line, err.column) == (1, 3, 30)  # the stray ]


def test_syntax_error_names_the_object_in_the_stream() -> None:
    text = pipeline() + "\n" + pipeline() + '\n{"pipeline": {"name": "x"}\n'
    err = error_of(text)
    assert err.document == 3
    assert err.line == 4


def test_missing_comma_between_members() -> None:
    err = error_of('{"pipeline": {"name": "p"}\n "transform": {}}')
    assert (err.line, err.column) == (2, 2)


def test_unterminated_string() -> None:
    err = error_of('{"pipeline": {"name": "p}}')
    assert err.line == 1 and err.document == 1


def test_trailing_garbage_after_an_object() -> None:
    err = error_of(pipeline() + " ]")
    assert err.document == 2


def test_nan_is_not_json() -> None:
    err = error_of('{"parallelism_spec": {"coefficient": NaN}}')
    assert (err.line, err.column) == (1, 38)


def test_syntax_error_message_is_one_line() -> None:
    err = error_of('{\n"a": \n}')
    assert "\n" not in str(err)


# -- errors: structure -------------------------------------------------------------------


def test_array_instead_of_objects() -> None:
    err = error_of("[" + pipeline() + "]")
    assert (err.document, err.line, err.column) == (1, 1, 1)


def test_scalar_document() -> None:
    err = error_of(pipeline() + ' "extra"')
    assert err.document == 2


def test_unknown_top_level_field_is_named_with_its_location() -> None:
    err = error_of('{\n  "pipeline": {"name": "p"},\n  "pipline": {}\n}')
    assert err.field == "pipline"
    assert (err.line, err.column) == (3, 3)


def test_unknown_nested_field_has_its_path() -> None:
    err = error_of(pipeline(inputs=[{"repo": {"name": "a"}}, {"repo": {"nme": "b"}}]))
    assert err.field == "inputs[1].repo.nme"


def test_unknown_field_in_method_object() -> None:
    err = error_of(pipeline(inputs=[{"repo": {"name": "a"}, "method": {"partitoin": "FILE"}}]))
    assert err.field == "inputs[0].method.partitoin"


def test_unknown_method_alias() -> None:
    err = error_of(pipeline(inputs=[{"repo": {"name": "a"}, "method": "mapreduce"}]))
    assert err.field == "inputs[0].method"


def test_unknown_enum_name() -> None:
    err = error_of(pipeline(parallelism_spec={"strategy": "LINEAR"}))
    assert err.field == "parallelism_spec.strategy"


def test_unknown_enum_number() -> None:
    err = error_of(pipeline(parallelism_spec={"strategy": 7}))
    assert err.field == "parallelism_spec.strategy"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"transform": {"cmd": "sh"}}, "transform.cmd"),
        ({"transform": {"cmd": [1]}}, "transform.cmd[0]"),
        ({"transform": {"cmd": [None]}}, "transform.cmd[0]"),
        ({"transform": {"image": 5}}, "transform.image"),
        ({"transform": {"env": ["A=1"]}}, "transform.env"),
        ({"transform": {"env": {"A": 1}}}, "transform.env.A"),
        ({"transform": {"debug": "yes"}}, "transform.debug"),
        ({"transform": "sh"}, "transform"),
        ({"pipeline": "p"}, "pipeline"),
        ({"inputs": {"repo": {"name": "a"}}}, "inputs"),
        ({"inputs": ["a"]}, "inputs[0]"),
        ({"inputs": [{"method": 3}]}, "inputs[0].method"),
        ({"inputs": [{"run_empty": 1}]}, "inputs[0].run_empty"),
        ({"parallelism_spec": {"constant": "four"}}, "parallelism_spec.constant"),
        ({"parallelism_spec": {"constant": 1.5}}, "parallelism_spec.constant"),
        ({"parallelism_spec": {"constant": True}}, "parallelism_spec.constant"),
        ({"parallelism_spec": {"constant": -1}}, "parallelism_spec.constant"),
        ({"parallelism_spec": {"constant": 2**64}}, "parallelism_spec.constant"),
        ({"parallelism_spec": {"coefficient": "lots"}}, "parallelism_spec.coefficient"),
        ({"parallelism_spec": {"coefficient": [1]}}, "parallelism_spec.coefficient"),
        ({"transform": {"accept_return_code": ["1x"]}}, "transform.accept_return_code[0]"),
        ({"parallelism": "many"}, "parallelism"),
        ({"update": "true"}, "update"),
    ],
)
def test_wrong_types_name_the_field(fields: dict[str, object], field: str) -> None:
    err = error_of(json.dumps(fields))
    assert err.field == field
    assert err.document == 1
    assert err.line == 1 and err.column is not None


def test_wrong_type_location_is_the_value() -> None:
    err = error_of('{\n  "transform": {\n    "cmd":   "sh"\n  }\n}')
    assert (err.line, err.column) == (3, 14)


def test_error_in_second_object_names_it() -> None:
    err = error_of(pipeline() + "\n" + pipeline(transform={"cmd": "sh"}))
    assert err.document == 2
    assert err.line == 2


def test_manifest_error_is_a_value_error_with_source() -> None:
    err = error_of('{"x": 1}').with_source("pipeline.json")
    assert isinstance(err, ValueError)
    assert err.source == "pipeline.json"
    assert err.field == "x"
