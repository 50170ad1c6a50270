"""--push-images: a manifest's local image, pushed to the cluster's registry.

As in v1.2: the image (`name[:tag]`, of the Docker engine at DOCKER_HOST) is
tagged `<registry>/<username>/<last part of its name>:<unique tag>` and
pushed, and the manifest then names the pushed image. A unique tag for each
push means a pod pulling with policy Always runs exactly what was pushed.
"""

from __future__ import annotations

import getpass
import sys
import uuid
from collections.abc import Iterator
from typing import Any, TextIO

import docker
from docker.errors import APIError, DockerException, ImageNotFound
from docker.utils import parse_repository_tag
from requests.exceptions import RequestException

from pachctl.cli.common import DEFAULT_REGISTRY
from pachyderm_client import InvalidArgumentError, UnavailableError


def pushed_name(image: str, registry: str, username: str, tag: str) -> str:
    repository, _ = parse_repository_tag(image)
    return f"{registry or DEFAULT_REGISTRY}/{username or getpass.getuser()}/{repository.split('/')[-1]}:{tag}"


def push_image(image: str, registry: str = "", username: str = "", *, progress: TextIO | None = None,
               quiet: bool = False) -> str:
    """Tags and pushes `image`; returns the pushed name. Progress goes to
    `progress` (default: stderr, when it is a terminal, unless `quiet`)."""
    if not image:
        raise InvalidArgumentError("--push-images needs the manifest's transform to name an image")
    target = pushed_name(image, registry, username, uuid.uuid4().hex)
    repository, tag = target.rsplit(":", 1)
    if progress is None and not quiet and sys.stderr.isatty():
        progress = sys.stderr
    try:
        client = docker.from_env()
    except DockerException as err:
        raise UnavailableError(f"cannot reach the Docker engine (DOCKER_HOST): {err}") from err
    try:
        try:
            client.images.get(image).tag(repository, tag)
        except ImageNotFound as err:
            raise InvalidArgumentError(f'image "{image}" is not on the Docker engine: build or pull it first') from err
        print(f"Pushing {target}, this may take a while.")
        _follow(client.api.push(repository, tag=tag, stream=True, decode=True), progress)
    except APIError as err:
        raise UnavailableError(f"cannot push {target}: {err.explanation or err}") from err
    except (DockerException, RequestException) as err:
        raise UnavailableError(f"cannot push {target}: {err}") from err
    finally:
        client.close()
    return target


def _follow(stream: Iterator[dict[str, Any]], progress: TextIO | None) -> None:
    """Reads the engine's push messages: one line per layer's state on `progress`; an error raises."""
    for message in stream:
        if "error" in message:
            detail = (message.get("errorDetail") or {}).get("message") or message["error"]
            raise APIError(str(detail), explanation=str(detail))
        if progress is None:
            continue
        layer, status = message.get("id", ""), message.get("status", "")
        bar = message.get("progress", "")
        line = f"{layer}: {status} {bar}".strip() if layer else status
        if not line:
            continue  # the engine's closing summary (aux) has no words of its own
        end = "\r" if bar else "\n"
        progress.write(f"\x1b[2K{line}{end}" if progress.isatty() else f"{line}\n")
        progress.flush()
    if progress is not None and progress.isatty():
        progress.write("\n")
