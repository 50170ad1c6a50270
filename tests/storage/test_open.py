"""Opening a block store from pachd's settings: flags and the standard AWS / Azure variables,
as pachd and `python -m pachd.check` do."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from pachd import config as pachd_config
from pachd.storage import open_block_store
from tests.support.azurite import Azurite
from tests.support.s3 import S3Server


async def _round_trip(argv: list[str], env: dict[str, str], tmp_path: Path) -> None:
    config = pachd_config.load(["--data-dir", str(tmp_path), *argv], env)
    store = await open_block_store(config)
    try:
        await store.put("blocks/opened", b"opened")
        assert await store.get("blocks/opened") == b"opened"
    finally:
        await store.close()


async def test_s3_from_the_standard_aws_environment(s3_server: S3Server, tmp_path: Path) -> None:
    bucket = f"open-{uuid.uuid4().hex[:8]}"
    s3_server.create_bucket(bucket)
    await _round_trip(["--storage", "s3", "--s3-bucket", bucket], s3_server.env(), tmp_path)


def test_s3_flags_and_their_variables() -> None:
    env = {"STORAGE_BACKEND": "s3", "S3_BUCKET": "b", "AWS_DEFAULT_REGION": "eu-west-1",
           "AWS_ENDPOINT_URL": "http://minio:9000", "AWS_ACCESS_KEY_ID": "id", "AWS_SECRET_ACCESS_KEY": "secret",
           "AWS_SESSION_TOKEN": "token"}
    loaded = pachd_config.load([], env)
    assert (loaded.storage, loaded.s3_bucket, loaded.s3_region, loaded.s3_endpoint) == (
        "s3", "b", "eu-west-1", "http://minio:9000")
    assert (loaded.s3_access_key, loaded.s3_secret_key, loaded.s3_session_token) == ("id", "secret", "token")
    flagged = pachd_config.load(["--s3-region", "us-west-2", "--s3-endpoint", "http://ceph:7480"], env)
    assert (flagged.s3_region, flagged.s3_endpoint) == ("us-west-2", "http://ceph:7480")


async def test_azure_from_its_variables(azurite: Azurite, tmp_path: Path) -> None:
    container = f"open-{uuid.uuid4().hex[:8]}"
    azurite.create_container(container)
    await _round_trip(["--storage", "azure", "--azure-container", container], azurite.env(), tmp_path)
    loaded = pachd_config.load(["--storage", "azure", "--azure-container", container], azurite.env())
    assert (loaded.azure_account, loaded.azure_endpoint) == (azurite.env()["AZURE_STORAGE_ACCOUNT"],
                                                             azurite.endpoint)


@pytest.mark.parametrize("argv", [
    ["--storage", "s3"],
    ["--storage", "azure", "--azure-account", "a", "--azure-key", "k"],
    ["--storage", "azure", "--azure-container", "c", "--azure-key", "k"],
    ["--storage", "azure", "--azure-container", "c", "--azure-account", "a"],
    ["--storage", "swift"],
])
def test_a_store_missing_its_settings_is_refused(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as refused:
        pachd_config.load(argv, {})
    assert refused.value.code != 0


@pytest.mark.parametrize("kind", ["s3", "azure"])
def test_the_checker_opens_the_new_stores(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    name = f"check-{uuid.uuid4().hex[:8]}"
    if kind == "s3":
        s3: S3Server = request.getfixturevalue("s3_server")
        s3.create_bucket(name)
        env, flags = s3.env(), ["--s3-bucket", name]
    else:
        azurite: Azurite = request.getfixturevalue("azurite")
        azurite.create_container(name)
        env, flags = azurite.env(), ["--azure-container", name]
    tmp_path.joinpath("data").mkdir()
    result = subprocess.run([sys.executable, "-m", "pachd.check", "--data-dir", str(tmp_path / "data"),
                             "--storage", kind, *flags, "--verify-data"],
                            env={"PATH": "/usr/bin:/bin", **env}, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
