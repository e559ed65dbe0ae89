"""Every DAG in ``dags/`` parses without errors, and parsing makes no network call."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
from airflow.dag_processing.dagbag import DagBag
from tests.conftest import DAGS_FOLDER


class NetworkCallAtParseTime(AssertionError):
    """Raised by the guarded socket when a DAG file opens a connection while it is parsed."""


@pytest.fixture
def dag_bag(monkeypatch: pytest.MonkeyPatch) -> DagBag:
    monkeypatch.delenv("GOTOASSIST_DOWNLOAD_TO", raising=False)
    monkeypatch.delenv("GOTOASSIST_DEFERRABLE", raising=False)
    _refuse_network(monkeypatch)
    return DagBag(dag_folder=str(DAGS_FOLDER))


def _refuse_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(sock: socket.socket, address: object) -> None:
        raise NetworkCallAtParseTime(f"a DAG file connected to {address!r} while being parsed")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)


def test_dags_parse_without_import_errors(dag_bag: DagBag) -> None:
    assert dag_bag.import_errors == {}
    assert "gotoassist_recordings" in dag_bag.dags


def test_the_guard_catches_a_network_call(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    # The guard above is only worth something if a DAG file that does call out is reported.
    (tmp_path / "calls_out.py").write_text(
        "import socket\nsocket.create_connection(('127.0.0.1', 9), timeout=1)\n"
        "from airflow.sdk import dag\n@dag(schedule=None)\ndef calls_out():\n    pass\ncalls_out()\n"
    )

    def refuse(sock: socket.socket, address: object) -> None:
        raise NetworkCallAtParseTime(f"connected to {address!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    bag = DagBag(dag_folder=str(tmp_path))
    assert "NetworkCallAtParseTime" in next(iter(bag.import_errors.values()))


def test_nightly_dag_shape(dag_bag: DagBag) -> None:
    dag = dag_bag.dags["gotoassist_recordings"]

    assert dag.catchup is False
    assert dag.doc_md
    assert {task.task_id for task in dag.tasks} == {
        "resolve_window",
        "list_recordings",
        "process_chunk.transcode",
        "process_chunk.archive",
        "report_day",
    }
    # Each chunk is transcoded and waited for in one task, then archived; both read the list's chunks.
    transcode = dag.get_task("process_chunk.transcode")
    archive = dag.get_task("process_chunk.archive")
    assert transcode.wait_until_ready is True
    assert archive.upstream_task_ids == {"list_recordings", "process_chunk.transcode"}
    # A chunk ready when listed skips transcoding and is archived all the same; a failed one is not.
    assert archive.trigger_rule == "none_failed"
    # The report runs after every chunk whatever happened, and is the one task that updates the asset.
    report = dag.get_task("report_day")
    assert report.upstream_task_ids == {"process_chunk.archive"}
    assert report.trigger_rule == "all_done"
    assert [asset.name for asset in report.outlets] == ["gotoassist_recordings_archived"]


@pytest.mark.parametrize("destination", ["/srv/recordings", "memory://recordings"])
def test_with_downloads_on_a_chunk_is_archived_only_after_its_download(
    monkeypatch: pytest.MonkeyPatch, destination: str
) -> None:
    monkeypatch.setenv("GOTOASSIST_DOWNLOAD_TO", destination)
    _refuse_network(monkeypatch)
    bag = DagBag(dag_folder=str(DAGS_FOLDER))
    assert bag.import_errors == {}
    dag = bag.dags["gotoassist_recordings"]

    download = dag.get_task("process_chunk.download")
    archive = dag.get_task("process_chunk.archive")
    assert download.upstream_task_ids == {"list_recordings", "process_chunk.transcode"}
    assert download.trigger_rule == "none_failed"
    assert archive.upstream_task_ids == {"list_recordings", "process_chunk.download"}
    # Archiving runs only when the download succeeded, never after it failed or was skipped.
    assert archive.trigger_rule == "all_success"
    assert download.destination == destination


@pytest.mark.parametrize(
    ("destination", "named"),
    [
        pytest.param("s4://bucket/recordings", "(Protocol not known: s4)", id="unknown-scheme"),
        # This project does not install s3fs: S3 needs the Amazon provider, or s3fs.
        pytest.param("s3://bucket/recordings", "(Install s3fs to access S3)", id="storage-not-installed"),
    ],
)
def test_a_storage_no_file_system_can_write_to_is_an_import_error(
    monkeypatch: pytest.MonkeyPatch, destination: str, named: str
) -> None:
    monkeypatch.setenv("GOTOASSIST_DOWNLOAD_TO", destination)
    _refuse_network(monkeypatch)

    bag = DagBag(dag_folder=str(DAGS_FOLDER))

    [error] = bag.import_errors.values()
    assert f"GOTOASSIST_DOWNLOAD_TO: the value {destination!r}: no installed file system stores" in error
    assert named in error


def test_a_relative_download_folder_is_an_import_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOTOASSIST_DOWNLOAD_TO", "recordings")

    bag = DagBag(dag_folder=str(DAGS_FOLDER))

    [error] = bag.import_errors.values()
    assert "GOTOASSIST_DOWNLOAD_TO: the value 'recordings' is not an absolute path" in error


def test_parsing_the_dag_leaves_the_http_clients_unimported(tmp_path) -> None:
    # The DAG processor parses the file far more often than its tasks run, and every task process
    # parses it too: the hooks and their HTTP clients are imported only by tasks that call the API.
    script = (
        "import sys\n"
        "from airflow.dag_processing.dagbag import DagBag\n"
        f"bag = DagBag(dag_folder={str(DAGS_FOLDER)!r})\n"
        "assert not bag.import_errors, bag.import_errors\n"
        "heavy = ('aiohttp', 'requests', 'pyrate_limiter', 'gotoassist_recordings.hooks.gotoassist')\n"
        "print(sorted(name for name in heavy if name in sys.modules))\n"
    )
    environment = {**os.environ, "AIRFLOW_HOME": str(tmp_path)}
    finished = subprocess.run(
        [sys.executable, "-c", script], env=environment, capture_output=True, text=True, check=True
    )

    assert finished.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize(
    ("variable", "value", "reason"),
    [
        pytest.param(
            "GOTOASSIST_TIMEZONE", "Europe/Berln", "'Europe/Berln' is not an IANA timezone", id="timezone"
        ),
        pytest.param(
            "GOTOASSIST_READY_POKE_INTERVAL", "5m", "Input should be a valid number", id="poke-interval"
        ),
        pytest.param(
            "GOTOASSIST_DEFERRABLE", "sometimes", "Input should be a valid boolean", id="deferrable"
        ),
        pytest.param(
            "GOTOASSIST_LOOK_BACK_DAYS", "40", "Input should be less than or equal to 31", id="look-back"
        ),
        pytest.param("GOTOASSIST_API_POOL", "", "String should have at least 1 character", id="pool"),
    ],
)
def test_a_wrong_setting_is_an_import_error_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, reason: str
) -> None:
    monkeypatch.setenv(variable, value)

    bag = DagBag(dag_folder=str(DAGS_FOLDER))

    [error] = bag.import_errors.values()
    assert f"The nightly DAG's settings are wrong: {variable}: {reason}" in error
