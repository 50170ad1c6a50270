"""The client's public API: commits in any of their three forms, create_pipeline
with keyword arguments, a file-like GetFile reader, a client that is a context
manager, errors typed by status code; and every public name documented and typed."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import threading
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest

import pachyderm_client
from pachyderm_client import (
    AlreadyExistsError,
    Client,
    FileReader,
    InvalidArgumentError,
    NotFoundError,
    PachydermError,
    as_commit,
    pipeline_input,
    pipeline_request,
)
from pachyderm_client.errors import from_rpc_error
from pachyderm_client.proto import pfs_pb2, pps_pb2
from tests.support.pachd import PachdProcess


def _public_callables() -> Iterator[tuple[str, Callable[..., Any]]]:
    """Every public function, class, method and property of the client's modules (not the generated ones)."""
    for info in pkgutil.iter_modules(pachyderm_client.__path__, "pachyderm_client."):
        if info.name == "pachyderm_client.proto":
            continue
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if name.startswith("_") or getattr(value, "__module__", None) != module.__name__:
                continue
            if inspect.isfunction(value):
                yield f"{module.__name__}.{name}", value
            elif inspect.isclass(value):
                yield f"{module.__name__}.{name}", value
                for attr, member in vars(value).items():
                    if attr.startswith("_") and attr not in ("__init__", "__enter__", "__exit__", "__iter__"):
                        continue
                    function = member.fget if isinstance(member, property) else member
                    if inspect.isfunction(function):
                        yield f"{module.__name__}.{name}.{attr}", function
    yield "pachyderm_client.Client.__init__", Client.__init__


def test_every_public_name_has_a_docstring_and_full_annotations() -> None:
    missing: list[str] = []
    seen = 0
    for where, value in _public_callables():
        seen += 1
        if not (value.__doc__ or "").strip():
            missing.append(f"{where}: no docstring")
        if inspect.isclass(value):
            continue
        function = inspect.unwrap(value)
        annotations = function.__annotations__
        for parameter in inspect.signature(function).parameters.values():
            if parameter.name not in ("self", "cls") and parameter.name not in annotations:
                missing.append(f"{where}: parameter {parameter.name} has no annotation")
        if "return" not in annotations:
            missing.append(f"{where}: no return annotation")
    assert seen > 80  # the walk found the API
    assert missing == []


def test_a_commit_is_a_string_a_tuple_or_a_message() -> None:
    message = pfs_pb2.Commit(repo=pfs_pb2.Repo(name="data"), id="master/0")
    assert as_commit("data/master/0") == as_commit(("data", "master/0")) == as_commit(message) == message
    assert as_commit("data") == pfs_pb2.Commit(repo=pfs_pb2.Repo(name="data"))
    with pytest.raises(TypeError):
        as_commit(("data", "master", "0"))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        as_commit(3)  # type: ignore[arg-type]


def test_every_method_takes_a_commit_in_any_form(client: Client) -> None:
    client.create_repo("data")
    started = client.start_commit("data")
    client.put_file(started, "a", b"message\n")
    client.put_file(f"data/{started.id}", "b", b"string\n")
    client.put_file(("data", started.id), "c", b"tuple\n")
    client.finish_commit(f"data/{started.id}")
    for form in (started, f"data/{started.id}", ("data", started.id), "data/master"):
        assert client.inspect_commit(form).finished.seconds > 0
        assert [f.file.path for f in client.list_file(form)] == ["/a", "/b", "/c"]
        assert client.get_file_bytes(form, "b") == b"string\n"
        assert client.inspect_file(form, "c").size_bytes == len(b"tuple\n")
    assert [i.commit.id for i in client.list_commit("data")] == [started.id]
    assert [i.commit.id for i in client.list_commit([("data", "")])] == [started.id]
    assert started.id in [i.commit.id for i in client.flush_commit(f"data/{started.id}")]


def test_the_reader_of_a_file_is_file_like(client: Client) -> None:
    client.create_repo("data")
    size = 3 * 1024 * 1024 + 5  # several GetFile messages
    body = bytes(i % 251 for i in range(size))
    with client.commit("data", "master") as commit:
        client.put_file(commit, "big", body)
    with client.get_file("data/master", "big") as reader:
        assert isinstance(reader, FileReader) and reader.readable()
        assert reader.read(10) == body[:10]
        assert b"".join(reader) == body[10:]
    assert reader.closed
    early = client.get_file("data/master", "big")
    assert early.read(1) == body[:1]
    early.close()  # ends the stream before its end; the client goes on working
    assert early.closed
    with pytest.raises(ValueError):
        early.read()
    assert client.get_file("data/master", "big", offset=size - 5).read() == body[-5:]


def test_create_pipeline_takes_keyword_arguments(client: Client) -> None:
    client.create_repo("data")
    with client.commit("data", "master") as commit:
        client.put_file(commit, "f", b"x\n")
    warnings = client.create_pipeline("copy", cmd=["sh"], stdin=["cp -r /pfs/data/. /pfs/out/"], inputs=["data"],
                                      parallelism=1, env={"MODE": "kwargs"})
    assert warnings == []
    info = client.inspect_pipeline("copy")
    assert list(info.transform.cmd) == ["sh"] and dict(info.transform.env) == {"MODE": "kwargs"}
    assert [i.repo.name for i in info.inputs] == ["data"] and info.parallelism_spec.constant == 1
    flushed = client.flush_commit([commit], to_repos=["copy"], timeout=120)
    output = next(i.commit for i in flushed if i.commit.repo.name == "copy")
    assert client.get_file_bytes(output, "f") == b"x\n"
    # the same request either way; both at once, or a transform beside image/cmd, is an error
    request = pipeline_request("p", transform=pps_pb2.Transform(cmd=["true"]), inputs=[pipeline_input("data", "reduce")])
    assert request.inputs[0].method == pps_pb2.Method(partition=pps_pb2.FILE, incremental=pps_pb2.NONE)
    with pytest.raises(TypeError):
        client.create_pipeline(request, update=True)  # type: ignore[call-overload]
    with pytest.raises(TypeError):
        client.create_pipeline("p", transform=pps_pb2.Transform(cmd=["true"]), cmd=["sh"])
    assert client.create_pipeline(request) == []
    assert client.inspect_pipeline("p").transform.cmd == ["true"]


def test_the_client_is_a_context_manager_that_closes_its_channel(own_pachd: PachdProcess) -> None:
    with Client(own_pachd.address) as client:
        assert isinstance(client, Client)
        assert client.list_repo() == []
    with pytest.raises(ValueError):  # grpc refuses calls on a closed channel
        client.list_repo()


def test_connecting_leaves_no_thread_behind(own_pachd: PachdProcess) -> None:
    """The first call waits for the connection in the caller's thread: grpc's subscribe()
    would leave a thread watching the channel, and closing the channel waits for it
    (0.2 s at the end of every pachctl command and pod)."""
    before = set(threading.enumerate())
    with Client(own_pachd.address) as client:
        assert client.list_repo() == []
        assert set(threading.enumerate()) - before == set()


def test_errors_are_typed_by_status_code(client: Client) -> None:
    client.create_repo("data")
    with pytest.raises(AlreadyExistsError) as exists:
        client.create_repo("data")
    with pytest.raises(NotFoundError) as missing:
        client.inspect_commit("data/master/9")
    with pytest.raises(InvalidArgumentError) as invalid:
        client.start_commit("data", "master/x")
    for caught, code in ((exists, grpc.StatusCode.ALREADY_EXISTS), (missing, grpc.StatusCode.NOT_FOUND),
                         (invalid, grpc.StatusCode.INVALID_ARGUMENT)):
        assert isinstance(caught.value, PachydermError)
        assert caught.value.code == code and caught.value.details and isinstance(caught.value.hint, str)


class _Failed(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode) -> None:
        self._code = code

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return "what pachd said"

    def trailing_metadata(self) -> tuple[Any, ...]:
        return ()


def test_each_status_code_has_its_own_error_class() -> None:
    classes = set()
    for code in grpc.StatusCode:
        if code in (grpc.StatusCode.OK, grpc.StatusCode.UNKNOWN):
            continue
        error = from_rpc_error(_Failed(code))
        assert type(error) is not PachydermError and isinstance(error, PachydermError), code
        assert error.code == code and error.details == "what pachd said"
        assert type(error).__name__ in pachyderm_client.__all__
        classes.add(type(error))
    assert len(classes) == len(grpc.StatusCode) - 2
    assert type(from_rpc_error(_Failed(grpc.StatusCode.UNKNOWN))) is PachydermError
