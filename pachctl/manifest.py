"""Reading pipeline and job manifests: one or more JSON objects in a stream.

Accepted as v1.2's reader did: objects one after another (not an array);
field names in snake_case or camelCase; numbers as JSON numbers or strings
("constant": "1"); an input's `method` as an alias (map, reduce,
incremental_reduce, global) or an object of partition and incremental; the
old top-level "parallelism": "4" for a CONSTANT parallelism_spec.
Unknown fields and wrong types are errors that name the field; syntax errors
say the line and column.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

from protos import pfs_pb2, pps_pb2


class ManifestError(ValueError):
    """A manifest that cannot be read; the message says where and why."""


METHOD_ALIASES = {
    "map": (pps_pb2.BLOCK, pps_pb2.DIFF),
    "reduce": (pps_pb2.FILE, pps_pb2.NONE),
    "incremental_reduce": (pps_pb2.FILE, pps_pb2.DIFF),
    "global": (pps_pb2.REPO, pps_pb2.NONE),
}


def snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def objects(text: str) -> Iterator[tuple[dict[str, Any], str]]:
    """Each top-level JSON object of `text`, with where it starts ("line L, column C")."""
    decoder = json.JSONDecoder()
    position = 0
    while True:
        while position < len(text) and text[position].isspace():
            position += 1
        if position >= len(text):
            return
        where = _where(text, position)
        try:
            value, position = decoder.raw_decode(text, position)
        except json.JSONDecodeError as err:
            raise ManifestError(f"line {err.lineno}, column {err.colno}: {err.msg}") from None
        if not isinstance(value, dict):
            raise ManifestError(f"{where}: expected a JSON object, found {type(value).__name__}")
        yield value, where


def _where(text: str, position: int) -> str:
    line = text.count("\n", 0, position) + 1
    column = position - (text.rfind("\n", 0, position) + 1) + 1
    return f"line {line}, column {column}"


class _Reader:
    """Reads one object's fields, naming the field in every error."""

    def __init__(self, where: str) -> None:
        self.where = where

    def fail(self, path: str, problem: str) -> ManifestError:
        return ManifestError(f"object at {self.where}: {path}: {problem}")

    def fields(self, value: Any, path: str, known: set[str]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(path or "(top)", f"expected an object, found {type(value).__name__}")
        out = {}
        for key, item in value.items():
            name = snake(key)
            if name not in known:
                raise self.fail(_join(path, key), f"unknown field; known fields: {', '.join(sorted(known))}")
            out[name] = item
        return out

    def string(self, value: Any, path: str) -> str:
        if not isinstance(value, str):
            raise self.fail(path, f"expected a string, found {json.dumps(value)}")
        return value

    def strings(self, value: Any, path: str) -> list[str]:
        if not isinstance(value, list):
            raise self.fail(path, "expected a list of strings")
        return [self.string(v, f"{path}[{i}]") for i, v in enumerate(value)]

    def number(self, value: Any, path: str, kind: Callable[[str], Any] = int) -> Any:
        if isinstance(value, bool):
            raise self.fail(path, f"expected a number, found {json.dumps(value)}")
        if isinstance(value, (int, float)) and (kind is float or float(value).is_integer()):
            return kind(str(value)) if kind is not float else float(value)
        if isinstance(value, str):
            try:
                return kind(value.strip())
            except ValueError:
                pass
        raise self.fail(path, f"expected a number, found {json.dumps(value)}")

    def boolean(self, value: Any, path: str) -> bool:
        if isinstance(value, bool):
            return value
        if value in ("true", "false"):
            return bool(value == "true")
        raise self.fail(path, f"expected true or false, found {json.dumps(value)}")

    def enum(self, value: Any, path: str, names: dict[str, int]) -> int:
        if isinstance(value, int) and not isinstance(value, bool) and value in names.values():
            return value
        if isinstance(value, str) and value.upper() in names:
            return names[value.upper()]
        raise self.fail(path, f"expected one of {', '.join(names)}, found {json.dumps(value)}")

    # -- the messages -------------------------------------------------------------

    def transform(self, value: Any, path: str) -> pps_pb2.Transform:
        d = self.fields(value, path, {"image", "cmd", "env", "secrets", "stdin", "accept_return_code", "debug"})
        out = pps_pb2.Transform(image=self.string(d.get("image", ""), _join(path, "image")),
                                cmd=self.strings(d.get("cmd", []), _join(path, "cmd")),
                                stdin=self.strings(d.get("stdin", []), _join(path, "stdin")),
                                debug=self.boolean(d.get("debug", False), _join(path, "debug")))
        env = d.get("env", {})
        if not isinstance(env, dict):
            raise self.fail(_join(path, "env"), "expected an object of names to values")
        for key, item in env.items():
            out.env[key] = self.string(item, _join(path, f"env.{key}"))
        codes = d.get("accept_return_code", [])
        if not isinstance(codes, list):
            raise self.fail(_join(path, "accept_return_code"), "expected a list of numbers")
        out.accept_return_code.extend(self.number(c, _join(path, f"accept_return_code[{i}]"))
                                      for i, c in enumerate(codes))
        for i, secret in enumerate(_list(self, d.get("secrets", []), _join(path, "secrets"))):
            s = self.fields(secret, f"{path}.secrets[{i}]", {"name", "mount_path"})
            out.secrets.add(name=self.string(s.get("name", ""), f"{path}.secrets[{i}].name"),
                            mount_path=self.string(s.get("mount_path", ""), f"{path}.secrets[{i}].mount_path"))
        return out

    def parallelism(self, value: Any, path: str) -> pps_pb2.ParallelismSpec:
        d = self.fields(value, path, {"strategy", "constant", "coefficient"})
        return pps_pb2.ParallelismSpec(
            strategy=self.enum(d.get("strategy", 0), _join(path, "strategy"), {"CONSTANT": 0, "COEFFICIENT": 1}),  # type: ignore[arg-type]
            constant=self.number(d.get("constant", 0), _join(path, "constant")),
            coefficient=self.number(d.get("coefficient", 0), _join(path, "coefficient"), float),
        )

    def method(self, value: Any, path: str) -> pps_pb2.Method:
        if isinstance(value, str):
            if value.lower() not in METHOD_ALIASES:
                raise self.fail(path, f"unknown method {value!r}; use {', '.join(METHOD_ALIASES)} or an object")
            partition, incremental = METHOD_ALIASES[value.lower()]
            return pps_pb2.Method(partition=partition, incremental=incremental)
        d = self.fields(value, path, {"partition", "incremental"})
        return pps_pb2.Method(
            partition=self.enum(d.get("partition", 0), _join(path, "partition"), dict(pps_pb2.Partition.items())),  # type: ignore[arg-type]
            incremental=self.enum(d.get("incremental", 0), _join(path, "incremental"),  # type: ignore[arg-type]
                                  dict(pps_pb2.Incremental.items())),
        )

    def name(self, value: Any, path: str) -> str:
        if isinstance(value, str):  # a bare name where an object with a name belongs
            return value
        return self.string(self.fields(value, path, {"name"}).get("name", ""), _join(path, "name"))


def _join(path: str, field: str) -> str:
    return f"{path}.{field}" if path else field


def _list(reader: _Reader, value: Any, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise reader.fail(path, "expected a list")
    return value


def _pipeline_inputs(r: _Reader, value: Any) -> list[pps_pb2.PipelineInput]:
    inputs = []
    for i, item in enumerate(_list(r, value, "inputs")):
        path = f"inputs[{i}]"
        d = r.fields(item, path, {"repo", "method", "run_empty"})
        method = r.method(d["method"], f"{path}.method") if "method" in d else pps_pb2.Method(
            partition=pps_pb2.BLOCK, incremental=pps_pb2.DIFF)
        inputs.append(pps_pb2.PipelineInput(repo=pfs_pb2.Repo(name=r.name(d.get("repo", {}), f"{path}.repo")),
                                            method=method, run_empty=r.boolean(d.get("run_empty", False),
                                                                               f"{path}.run_empty")))
    return inputs


def read_pipelines(text: str) -> list[pps_pb2.CreatePipelineRequest]:
    """Every CreatePipelineRequest in a manifest."""
    known = {"pipeline", "transform", "parallelism_spec", "parallelism", "inputs", "update", "no_archive"}
    requests = []
    for value, where in objects(text):
        r = _Reader(where)
        d = r.fields(value, "", known)
        request = pps_pb2.CreatePipelineRequest(
            pipeline=pps_pb2.Pipeline(name=r.name(d.get("pipeline", {}), "pipeline")),
            transform=r.transform(d.get("transform", {}), "transform"),
            inputs=_pipeline_inputs(r, d.get("inputs", [])),
            update=r.boolean(d.get("update", False), "update"),
            no_archive=r.boolean(d.get("no_archive", False), "no_archive"),
        )
        if "parallelism_spec" in d:
            request.parallelism_spec.CopyFrom(r.parallelism(d["parallelism_spec"], "parallelism_spec"))
        elif "parallelism" in d:
            request.parallelism_spec.constant = r.number(d["parallelism"], "parallelism")
        if not request.pipeline.name:
            raise r.fail("pipeline.name", "every pipeline needs a name")
        requests.append(request)
    if not requests:
        raise ManifestError("the manifest holds no pipeline")
    return requests


def read_jobs(text: str) -> list[pps_pb2.CreateJobRequest]:
    """Every CreateJobRequest in a manifest (create-job, run-pipeline -f)."""
    known = {"transform", "pipeline", "parallelism_spec", "parallelism", "inputs", "parent_job", "force"}
    requests = []
    for value, where in objects(text):
        r = _Reader(where)
        d = r.fields(value, "", known)
        request = pps_pb2.CreateJobRequest(force=r.boolean(d.get("force", False), "force"))
        if "transform" in d:
            request.transform.CopyFrom(r.transform(d["transform"], "transform"))
        if "pipeline" in d:
            request.pipeline.name = r.name(d["pipeline"], "pipeline")
        if "parallelism_spec" in d:
            request.parallelism_spec.CopyFrom(r.parallelism(d["parallelism_spec"], "parallelism_spec"))
        elif "parallelism" in d:
            request.parallelism_spec.constant = r.number(d["parallelism"], "parallelism")
        if "parent_job" in d:
            request.parent_job.id = r.string(r.fields(d["parent_job"], "parent_job", {"id"}).get("id", ""),
                                             "parent_job.id")
        for i, item in enumerate(_list(r, d.get("inputs", []), "inputs")):
            path = f"inputs[{i}]"
            fields = r.fields(item, path, {"commit", "method", "run_empty"})
            commit = r.fields(fields.get("commit", {}), f"{path}.commit", {"repo", "id"})
            job_input = request.inputs.add(run_empty=r.boolean(fields.get("run_empty", False), f"{path}.run_empty"))
            job_input.commit.repo.name = r.name(commit.get("repo", {}), f"{path}.commit.repo")
            job_input.commit.id = r.string(commit.get("id", ""), f"{path}.commit.id")
            if "method" in fields:
                job_input.method.CopyFrom(r.method(fields["method"], f"{path}.method"))
        requests.append(request)
    if not requests:
        raise ManifestError("the manifest holds no job")
    return requests
