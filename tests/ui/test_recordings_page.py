"""The "GoToAssist recordings" page in a real browser, inside a real Airflow UI.

The module runs the nightly DAG for three days against the local GoToAssist API server, on an
Airflow home of its own: two days are archived completely, the one between them has a chunk that
fails. It then starts ``airflow api-server`` on that home with the project's plugins folder, logs in
as a read-only user of Airflow's simple auth manager, and drives Debian's Chromium (headless, through
Playwright) to the page: from the UI's navigation, then checking the chart and the runs table against
what the runs did, and keeping a screenshot.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pendulum
import pytest
import requests
from PIL import Image
from playwright.sync_api import BrowserContext, Page, expect, sync_playwright
from tests.conftest import DAGS_FOLDER, ROOT

from gotoassist_api_server.connection import airflow_connection_json
from gotoassist_api_server.seeding import seed
from gotoassist_api_server.testing import ServerHandle, running_server

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason=f"Debian's chromium is not installed at {CHROMIUM}: `make test` installs it "
    "(apt-get install chromium chromium-driver, as root)",
)

AIRFLOW = str(Path(sys.executable).with_name("airflow"))
#: Chromium on a machine without network: without these flags it stalls on start-up calls home.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWER, VIEWER_PASSWORD = "viewer", "a-viewer-password"
PAGE_TITLE = "GoToAssist recordings"
#: How long the api-server may take to answer after it was started; it never takes this long.
START_DEADLINE_SECONDS = 180

TODAY = pendulum.now("UTC").date()
BUSY_DAY, FAILING_DAY, QUIET_DAY = (TODAY.subtract(days=n).isoformat() for n in (3, 2, 1))
#: Recordings per day, and the share ready for download already: 650 make three chunks (520 to
#: transcode, 130 ready), 40 and 120 make two each.
COUNTS = {BUSY_DAY: 650, FAILING_DAY: 40, QUIET_DAY: 120}
READY_FRACTIONS = {BUSY_DAY: 0.2, FAILING_DAY: 0.5, QUIET_DAY: 0.5}


@dataclass
class NightlyRuns:
    """What the runs did, as ``tests/ui/nightly_runs.py`` printed it."""

    home: Path
    environment: dict[str, str]
    runs: dict[str, dict[str, Any]]


@dataclass
class AirflowUi:
    base_url: str
    token: str


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _run(arguments: list[str], environment: dict[str, str], log: Path) -> str:
    finished = subprocess.run(
        arguments, env=environment, capture_output=True, text=True, timeout=900, check=False
    )
    log.write_text(finished.stdout + finished.stderr)
    if finished.returncode != 0:
        pytest.fail(f"{' '.join(arguments[:3])} failed (log: {log}):\n{finished.stderr[-3000:]}")
    return finished.stdout


@pytest.fixture(scope="module")
def api_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    path = tmp_path_factory.mktemp("ui-api") / "api.sqlite"
    for number, (day, count) in enumerate(COUNTS.items()):
        seed(
            path,
            day=day,
            count=count,
            neighbours=0,
            ready_fraction=READY_FRACTIONS[day],
            seed=20 + number,
        )
    with running_server(path, transcode_delay=1.0) as server:
        yield server


@pytest.fixture(scope="module")
def nightly_runs(api_server: ServerHandle, tmp_path_factory: pytest.TempPathFactory) -> NightlyRuns:
    home = tmp_path_factory.mktemp("ui-airflow")
    passwords = home / "passwords.json"
    passwords.write_text(json.dumps({VIEWER: VIEWER_PASSWORD}))
    environment = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{VIEWER}:viewer",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
        "AIRFLOW__API_AUTH__JWT_SECRET": "ui-tests-jwt-secret",
        "AIRFLOW_CONN_GOTOASSIST_DEFAULT": airflow_connection_json(api_server.base_url),
        "GOTOASSIST_READY_POKE_INTERVAL": "0.5",
        # Each run processes its own day only: the quiet day's run would otherwise archive the failing
        # day's ready recordings too, as the look-back sweep is there to do.
        "GOTOASSIST_LOOK_BACK_DAYS": "0",
    }
    _run([AIRFLOW, "db", "migrate"], environment, home / "migrate.log")
    script = [sys.executable, str(Path(__file__).with_name("nightly_runs.py"))]
    printed = _run([*script, BUSY_DAY, QUIET_DAY], environment, home / "runs.log")
    # The first readiness check of the failing day answers garbage: one of its two chunks fails.
    api_server.fail_next("urls", "malformed-json")
    try:
        printed += _run([*script, FAILING_DAY], environment, home / "failing-run.log")
    finally:
        api_server.clear_faults()
    runs = {}
    for line in printed.splitlines():
        if line.startswith("{"):
            run = json.loads(line)
            runs[run["day"]] = run
    assert {day: run["state"] for day, run in runs.items()} == {
        BUSY_DAY: "success",
        QUIET_DAY: "success",
        FAILING_DAY: "failed",
    }
    return NightlyRuns(home, environment, runs)


@pytest.fixture(scope="module")
def airflow_ui(nightly_runs: NightlyRuns) -> Iterator[AirflowUi]:
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    log = (nightly_runs.home / "api-server.log").open("w")
    server = subprocess.Popen(
        [AIRFLOW, "api-server", "--host", "127.0.0.1", "--port", str(port)],
        env=nightly_runs.environment,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + START_DEADLINE_SECONDS
        while True:
            if server.poll() is not None:
                pytest.fail(f"airflow api-server exited with {server.returncode}; see {log.name}")
            try:
                if requests.get(f"{base_url}/api/v2/monitor/health", timeout=5).ok:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    f"airflow api-server did not answer within {START_DEADLINE_SECONDS} s; see {log.name}"
                )
            time.sleep(0.5)
        answer = requests.post(
            f"{base_url}/auth/token", json={"username": VIEWER, "password": VIEWER_PASSWORD}, timeout=30
        )
        answer.raise_for_status()
        yield AirflowUi(base_url, answer.json()["access_token"])
    finally:
        # The server and the workers it started share the process group it was started in.
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


@pytest.fixture(scope="module")
def browser(airflow_ui: AirflowUi, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserContext]:
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1500, "height": 1000},
        )
        # Logged in as the read-only user, as the UI's login page would leave the browser.
        context.add_cookies([{"name": "_token", "value": airflow_ui.token, "url": airflow_ui.base_url}])
        try:
            yield context
        finally:
            context.close()


def test_the_page_needs_a_logged_in_user(airflow_ui: AirflowUi) -> None:
    page_url = f"{airflow_ui.base_url}/gotoassist-recordings/"

    assert requests.get(page_url, timeout=30).status_code == 401
    answer = requests.get(page_url, headers={"Authorization": f"Bearer {airflow_ui.token}"}, timeout=30)
    assert answer.status_code == 200
    assert "<h1>GoToAssist recordings</h1>" in answer.text


def test_the_page_shows_archived_days_and_the_last_runs(
    browser: BrowserContext, airflow_ui: AirflowUi, nightly_runs: NightlyRuns, tmp_path: Path
) -> None:
    page: Page = browser.new_page()

    # Reach the page as a person would: from the UI's navigation.
    page.goto(f"{airflow_ui.base_url}/")
    page.get_by_role("button", name="Browse").click()
    page.get_by_role("menuitem", name=PAGE_TITLE).click()
    expect(page).to_have_url(f"{airflow_ui.base_url}/plugin/gotoassist-recordings/gotoassist-recordings/")
    view = page.frame_locator(f'iframe[title="{PAGE_TITLE}"]')

    # The chart: one bar for each completely archived day; a dash for the day a chunk failed.
    expect(view.locator("svg#chart")).to_be_visible()
    for day in (BUSY_DAY, QUIET_DAY):
        expect(view.locator(f'g.day[data-day="{day}"]')).to_have_attribute("data-archived", str(COUNTS[day]))
        expect(view.locator(f'g.day[data-day="{day}"] rect.bar')).to_have_count(1)
    expect(view.locator(f'g.day[data-day="{FAILING_DAY}"]')).to_have_attribute("data-archived", "")
    expect(view.locator(f'g.day[data-day="{FAILING_DAY}"] rect')).to_have_count(0)
    expect(view.locator("#total-archived")).to_have_text(f"{COUNTS[BUSY_DAY] + COUNTS[QUIET_DAY]:,}")
    expect(view.locator("#days-archived")).to_have_text("2 of 14")

    # The runs: each with its state, its window and what its report counted.
    expect(view.locator("tr[data-run-id]")).to_have_count(3)
    for day, run in nightly_runs.runs.items():
        row = view.locator(f'tr[data-run-id="{run["run_id"]}"]')
        expect(row.locator(".state")).to_have_text(run["state"])
        expect(row).to_contain_text(f"{day} UTC")
        expect(row.locator('[data-count="listed"]')).to_have_text(f"{COUNTS[day]:,}")
        ready = round(COUNTS[day] * READY_FRACTIONS[day])
        expect(row.locator('[data-count="already_ready"]')).to_have_text(f"{ready:,}")
    failed = view.locator(f'tr[data-run-id="{nightly_runs.runs[FAILING_DAY]["run_id"]}"]')
    expect(failed).to_contain_text("1 of 2")
    expect(failed.locator("td.announced")).to_have_text("no")
    expect(view.locator("td.announced", has_text="yes")).to_have_count(2)
    busy = view.locator(f'tr[data-run-id="{nightly_runs.runs[BUSY_DAY]["run_id"]}"]')
    expect(busy.locator('[data-count="archived"]')).to_have_text(f"{COUNTS[BUSY_DAY]:,}")
    expect(busy).to_contain_text("3 of 3")

    screenshot = tmp_path / "gotoassist-recordings.png"
    page.screenshot(path=str(screenshot), full_page=True)
    with Image.open(screenshot) as image:
        assert image.format == "PNG"
        assert image.width == 1500
        assert image.height >= 1000
        # A blank or half-drawn page has a handful of colours; this one has text, badges and bars.
        assert image.convert("RGB").getcolors(maxcolors=64) is None
    print(f"\nscreenshot of the page: {screenshot}")
