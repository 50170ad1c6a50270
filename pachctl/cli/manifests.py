"""Where manifests come from: a file, a URL, or standard input."""

from __future__ import annotations

import http.client
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from pachyderm_client import InvalidArgumentError


def read_source(source: str) -> str:
    """The manifest text (UTF-8) of a file, an http(s) URL, or '-' for standard input.

    Every way of failing (missing file, unreachable URL, bytes that are not
    UTF-8) is an InvalidArgumentError that names the source.
    """
    name = "standard input" if source == "-" else source
    try:
        if source == "-":
            return sys.stdin.read()
        if urllib.parse.urlparse(source).scheme in ("http", "https"):
            with urllib.request.urlopen(source, timeout=60) as response:
                return bytes(response.read()).decode()
        return Path(source).read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise InvalidArgumentError(f"cannot read {name}: byte {err.start} is not UTF-8 ({err.reason}); "
                                   "manifests are UTF-8 JSON") from err
    except urllib.error.URLError as err:  # HTTPError too; before OSError, its base
        raise InvalidArgumentError(f"cannot fetch {source}: {err.reason}") from err
    except OSError as err:
        raise InvalidArgumentError(f"cannot read {source}: {err.strerror or err}") from err
    except (http.client.HTTPException, ValueError) as err:  # a broken response or a malformed URL
        raise InvalidArgumentError(f"cannot fetch {source}: {err or type(err).__name__}") from err
