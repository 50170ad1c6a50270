"""The web console end to end, in a real headless Chromium (Debian's) driven by Playwright.

The fruit-stand tutorial runs through pachctl; then the console must show the
DAG data -> filter -> sum, a job's logs, a new job appearing without a reload
when a commit arrives, and a file's content equal to get-file's. Screenshots
of each page are saved under test-output/console/ for a person to look at.
"""

from __future__ import annotations

import json
import os
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from pachyderm_client import Client
from tests.support.cli import pachctl
from tests.support.examples import example
from tests.support.pachd import PachdProcess
from tests.support.ports import free_port

EXAMPLE = example("fruit_stand")
CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(os.environ.get("PACH_TEST_OUTPUT", Path(__file__).resolve().parents[2] / "test-output")) / "console"
WAIT_MS = 60_000
# As the machine's own probe starts it: no sandbox as root, no background
# connections (the network is closed), a fresh profile.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


expect.set_options(timeout=WAIT_MS)


@pytest.fixture(scope="module")
def console_pachd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[PachdProcess, str]]:
    http_port = free_port()
    server = PachdProcess(tmp_path_factory.mktemp("console") / "data", extra_args=["--http-port", str(http_port)])
    server.start()
    yield server, f"http://127.0.0.1:{http_port}"
    server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is missing: `make test` installs it (etc/install-system-packages.sh --test)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    opened = context.new_page()
    opened.set_default_timeout(WAIT_MS)
    yield opened
    context.close()


def _shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _tutorial_first_commit(address: str) -> None:
    for args in (("create-repo", "data"),
                 ("put-file", "data", "master", "sales", "-c", "-f", str(EXAMPLE / "set1.txt")),
                 ("create-pipeline", "-f", str(EXAMPLE / "pipeline.json")),
                 ("flush-commit", "data/master/0")):
        result = pachctl(address, *args)
        assert result.code == 0, result.err


def test_the_console_follows_the_fruit_stand(console_pachd: tuple[PachdProcess, str], page: Page) -> None:
    server, url = console_pachd
    _tutorial_first_commit(server.address)
    with Client(server.address) as client:
        # The DAG: data -> filter -> filter(repo) -> sum -> sum(repo).
        page.goto(url + "/#/")
        for node in ("repo:data", "pipeline:filter", "repo:filter", "pipeline:sum", "repo:sum"):
            expect(page.locator(f'[data-node="{node}"]')).to_be_visible()
        for edge in ("repo:data->pipeline:filter", "pipeline:filter->repo:filter",
                     "repo:filter->pipeline:sum", "pipeline:sum->repo:sum"):
            expect(page.locator(f'[data-edge="{edge}"]')).to_have_count(1)
        expect(page.locator('[data-node="pipeline:sum"]')).to_contain_text("last job SUCCESS")
        boxes = {n: page.locator(f'[data-node="{n}"]').bounding_box() for n in ("repo:data", "pipeline:filter", "repo:sum")}
        assert boxes["repo:data"]["x"] < boxes["pipeline:filter"]["x"] < boxes["repo:sum"]["x"]  # laid out left to right
        _shot(page, "dag")

        # Jobs: both jobs listed; a filter job's page shows its pods and its logs.
        page.goto(url + "/#/jobs")
        expect(page.locator("[data-job]")).to_have_count(2)
        _shot(page, "jobs")
        filter_job = client.list_job(pipeline="filter")[0].job.id
        page.goto(url + f"/#/jobs/{filter_job}")
        expect(page.get_by_test_id("job-state")).to_have_text("SUCCESS")
        logs = page.get_by_test_id("logs")
        expect(logs).not_to_be_empty()
        assert "".join(line.decode() for line in client.get_logs(filter_job)).strip() in logs.inner_text() or \
            logs.inner_text().strip() == "(the job printed nothing)"
        _shot(page, "job")

        # Live: a new commit makes a new job appear on the open jobs page without a reload.
        page.goto(url + "/#/jobs")
        expect(page.locator("[data-job]")).to_have_count(2)
        page.evaluate("window.__notReloaded = true")
        result = pachctl(server.address, "put-file", "data", "master", "sales", "-c", "-f", str(EXAMPLE / "set2.txt"))
        assert result.code == 0, result.err
        expect(page.locator("[data-job]")).to_have_count(4)
        assert page.evaluate("window.__notReloaded") is True
        client.flush_commit([("data", "master/1")])

        # A file's content is what get-file returns.
        sum_commit = next(c for c in client.flush_commit([("data", "master/1")]) if c.commit.repo.name == "sum")
        commit_id = sum_commit.commit.id
        page.goto(url + f"/#/files/sum/{commit_id}/")
        expect(page.locator('[data-path="/apple"]')).to_be_visible()
        _shot(page, "files")
        page.locator('[data-path="/apple"] a').click()
        content = page.get_by_test_id("file-content")
        expect(content).to_have_text(client.get_file_bytes(("sum", commit_id), "apple").decode())
        assert content.inner_text().strip() == "324"
        _shot(page, "file")
        with page.expect_download() as download:
            page.get_by_test_id("download").click()
        assert Path(download.value.path()).read_bytes() == client.get_file_bytes(("sum", commit_id), "apple")

        # Repos and commits, with provenance.
        page.goto(url + "/#/repos/sum")
        expect(page.locator(f'[data-commit="{commit_id}"]')).to_contain_text("data/master/1")
        _shot(page, "repo")


def test_an_image_is_shown_as_an_image(console_pachd: tuple[PachdProcess, str], page: Page) -> None:
    server, url = console_pachd
    picture = SHOTS / "dag.png"  # any PNG will do: the first test's screenshot
    if not picture.exists():
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.goto(url + "/#/")
        page.screenshot(path=str(picture))
    with Client(server.address) as client:
        client.create_repo("pictures")
        with client.commit("pictures", "master") as commit:
            client.put_file(("pictures", commit.id), "shot.png", picture.read_bytes())
    page.goto(url + "/#/file/pictures/master/0/shot.png")
    image = page.locator("img.content")
    expect(image).to_be_visible()
    page.wait_for_function("document.querySelector('img.content').naturalWidth > 0")
    assert page.evaluate("document.querySelector('img.content').naturalWidth") > 100


def test_a_failed_job_shows_its_reason(console_pachd: tuple[PachdProcess, str], page: Page) -> None:
    server, url = console_pachd
    with Client(server.address) as client:
        client.create_repo("broken_in")
        with client.commit("broken_in", "master") as commit:
            client.put_file(("broken_in", commit.id), "f", b"x\n")
        manifest = {"pipeline": {"name": "broken"}, "transform": {"cmd": ["sh", "-c", "echo about to fail; exit 3"]},
                    "inputs": [{"repo": {"name": "broken_in"}}]}
        result = pachctl(server.address, "create-pipeline", "-f", "-", stdin=json.dumps(manifest))
        assert result.code == 0, result.err
        page.goto(url + "/#/jobs?pipeline=broken")
        expect(page.locator("[data-job]")).to_have_count(1)
        job = client.list_job(pipeline="broken")[0].job.id
        page.goto(url + f"/#/jobs/{job}")
        expect(page.get_by_test_id("job-state")).to_have_text("FAILURE")
        expect(page.get_by_test_id("job-reason")).not_to_be_empty()
        expect(page.get_by_test_id("job-exit-code")).to_have_text("3")
        expect(page.get_by_test_id("job-last-lines")).to_have_text("about to fail")
        expect(page.get_by_test_id("logs")).to_contain_text("about to fail")
        _shot(page, "failed-job")


def test_a_running_job_s_logs_arrive_as_they_are_printed(console_pachd: tuple[PachdProcess, str], page: Page) -> None:
    """The pod prints a line, then waits until the test opens a port (after the page showed
    that line), then prints another: the page shows both without a reload."""
    server, url = console_pachd
    with socket.socket() as gate:
        gate.bind(("127.0.0.1", 0))
        port = gate.getsockname()[1]
        waiter = ("import socket, time\n"
                  "while True:\n"
                  "    try:\n"
                  f"        socket.create_connection(('127.0.0.1', {port}), timeout=1).close(); break\n"
                  "    except OSError: time.sleep(0.1)\n")
        script = f"echo first line; python3 -c \"$WAITER\"; echo second line"
        with Client(server.address) as client:
            client.create_repo("slow_in")
            with client.commit("slow_in", "master") as commit:
                client.put_file(("slow_in", commit.id), "f", b"x\n")
            manifest = {"pipeline": {"name": "slow"},
                        "transform": {"cmd": ["sh", "-c", script], "env": {"WAITER": waiter}},
                        "inputs": [{"repo": {"name": "slow_in"}}]}
            result = pachctl(server.address, "create-pipeline", "-f", "-", stdin=json.dumps(manifest))
            assert result.code == 0, result.err
            page.goto(url + "/#/jobs?pipeline=slow")
            expect(page.locator("[data-job]")).to_have_count(1)
            job = client.list_job(pipeline="slow")[0].job.id
            page.goto(url + f"/#/jobs/{job}")
            logs = page.get_by_test_id("logs")
            expect(logs).to_contain_text("first line")
            expect(page.get_by_test_id("job-state")).to_have_text("RUNNING")
            assert "second line" not in logs.inner_text()
            page.evaluate("window.__notReloaded = true")
            gate.listen()
            expect(logs).to_contain_text("second line")
            expect(page.get_by_test_id("job-state")).to_have_text("SUCCESS")
            assert page.evaluate("window.__notReloaded") is True


def test_with_a_token_the_console_asks_for_it(tmp_path: Path, browser: Browser) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("s3cret-console-token\n")
    http_port = free_port()
    server = PachdProcess(tmp_path / "data", extra_args=["--http-port", str(http_port),
                                                          "--auth-token-file", str(token_file)])
    server.start()
    url = f"http://127.0.0.1:{http_port}"
    try:
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(url + "/api/dag", timeout=30)
        assert refused.value.code == 401
        context = browser.new_context()
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        page.goto(url + "/#/")
        page.get_by_test_id("token").fill("wrong")
        page.get_by_role("button", name="Sign in").click()
        expect(page.locator("form.login .error")).not_to_be_empty()
        page.get_by_test_id("token").fill("s3cret-console-token")
        page.get_by_role("button", name="Sign in").click()
        expect(page.locator("h1")).to_have_text("Pipelines and data")
        _shot(page, "signed-in")
        context.close()
    finally:
        server.stop()
