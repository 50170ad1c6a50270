"""Fetching put-file data from a URL (http and https only)."""

from __future__ import annotations

import asyncio
import http.client
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator
from typing import BinaryIO

from pachd.errors import InvalidArgument, NotFound, Unavailable

CHUNK = 1024 * 1024
TIMEOUT = 60.0


async def fetch(url: str) -> AsyncIterator[bytes]:
    """The body of `url`, in chunks; the request runs in a worker thread."""
    try:
        scheme = urllib.parse.urlparse(url).scheme
    except ValueError as err:  # e.g. an unclosed IPv6 bracket
        raise InvalidArgument(f"cannot put-file from {url!r}: it is not a valid URL ({err})") from err
    if scheme not in ("http", "https"):
        raise InvalidArgument(f"cannot put-file from {url!r}: only http and https URLs are fetched")
    try:
        response: BinaryIO = await asyncio.to_thread(urllib.request.urlopen, url, timeout=TIMEOUT)
    except urllib.error.HTTPError as err:
        if err.code in (404, 410):
            raise NotFound(f"{url!r} answered {err.code}: nothing to put there") from err
        raise Unavailable(f"{url!r} answered {err.code} {err.reason}") from err
    except http.client.InvalidURL as err:
        raise InvalidArgument(f"cannot put-file from {url!r}: it is not a valid URL ({err})") from err
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as err:
        raise Unavailable(f"cannot fetch {url!r}: {err}") from err
    try:
        while True:
            try:
                chunk = await asyncio.to_thread(response.read, CHUNK)
            except (OSError, http.client.HTTPException) as err:  # e.g. IncompleteRead
                raise Unavailable(f"fetching {url!r} failed midway: {err!r}") from err
            if not chunk:
                return
            yield chunk
    finally:
        response.close()
