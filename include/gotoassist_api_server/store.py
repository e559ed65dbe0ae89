"""SQLite-backed state of the local GoToAssist API server.

Everything the server knows lives in one SQLite file, so a restarted server carries on where it
stopped: the account directory (accounts, users, companies), the OAuth credentials and issued access
tokens, the recordings with their lifecycle, and a log of every API call for the statistics, each
with the fault injected into it, if any.

Instants are stored as POSIX timestamps. A recording's ``start_time`` is a whole number of seconds;
the lifecycle instants keep their fractions so sub-second transcode delays work.

The store holds a single connection guarded by a lock. The database runs in WAL mode, so the
``stats`` command can read it while a server is writing.
"""

from __future__ import annotations

import contextlib
import enum
import heapq
import hmac
import json
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gotoassist_api_server.clock import format_optional_time

_SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (
    account_key TEXT PRIMARY KEY
);
CREATE TABLE IF NOT EXISTS users (
    user_key TEXT PRIMARY KEY,
    account_key TEXT NOT NULL REFERENCES accounts (account_key)
);
CREATE TABLE IF NOT EXISTS companies (
    company_id TEXT PRIMARY KEY,
    account_key TEXT NOT NULL REFERENCES accounts (account_key)
);
CREATE TABLE IF NOT EXISTS clients (
    client_id TEXT PRIMARY KEY,
    client_secret TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS refresh_tokens (
    token TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    issued_at REAL NOT NULL,
    revoked_at REAL
);
CREATE TABLE IF NOT EXISTS personal_access_tokens (
    token TEXT PRIMARY KEY,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS access_tokens (
    token TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    issued_at REAL NOT NULL,
    expires_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS recordings (
    recording_id TEXT PRIMARY KEY,
    account_key TEXT NOT NULL,
    user_key TEXT NOT NULL,
    company_id TEXT,
    session_type INTEGER NOT NULL CHECK (session_type IN (0, 1)),
    start_time INTEGER NOT NULL,
    transcode_requested_at REAL,
    ready_at REAL,
    archived_at REAL,
    transcode_calls INTEGER NOT NULL DEFAULT 0,
    archive_calls INTEGER NOT NULL DEFAULT 0,
    archived_before_ready INTEGER NOT NULL DEFAULT 0,
    -- How many list answers named the recording: whether a client found it at all.
    listed_calls INTEGER NOT NULL DEFAULT 0
);
-- The list call walks recordings in start-time order and stops at the list limit. Account, user and
-- company keys select large shares of all recordings, so they filter during that walk rather than
-- lead an index. The lifecycle index groups recordings by whether transcoding was ever requested and
-- whether they are archived, so each list walks only its own group; the index on ready_at finds the
-- recordings still transcoding.
CREATE INDEX IF NOT EXISTS recordings_by_start ON recordings (start_time, recording_id);
CREATE INDEX IF NOT EXISTS recordings_by_lifecycle
    ON recordings ((ready_at IS NULL), (archived_at IS NULL), start_time, recording_id);
CREATE INDEX IF NOT EXISTS recordings_by_ready_at ON recordings (ready_at);
CREATE TABLE IF NOT EXISTS calls (
    call_id INTEGER PRIMARY KEY AUTOINCREMENT,
    called_at REAL NOT NULL,
    method TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    status INTEGER NOT NULL,
    recording_id_count INTEGER NOT NULL DEFAULT 0,
    fault TEXT
);
"""

_TABLES = (
    "calls",
    "recordings",
    "access_tokens",
    "personal_access_tokens",
    "refresh_tokens",
    "clients",
    "companies",
    "users",
    "accounts",
)

# The recording IDs of a request travel into SQL as one JSON array, whatever their number.
_NAMED_IDS = "SELECT value FROM json_each(:ids)"

# A recording's state at :now, as SQL; mirrors Recording.state_at.
_STATE_SQL = """
    CASE
        WHEN ready_at IS NOT NULL AND ready_at <= :now THEN 'ready_for_download'
        WHEN transcode_requested_at IS NOT NULL THEN 'transcoding'
        ELSE 'ready_for_transcode'
    END
"""


class RecordingState(enum.StrEnum):
    """Where a recording stands in its transcode lifecycle."""

    READY_FOR_TRANSCODE = "ready_for_transcode"
    TRANSCODING = "transcoding"
    READY_FOR_DOWNLOAD = "ready_for_download"


class DirectoryKind(enum.StrEnum):
    """The kinds of keys the list call filters by, named as the API names its parameters."""

    ACCOUNT = "accountKey"
    USER = "userKey"
    COMPANY = "companyId"


_DIRECTORY_TABLES = {
    DirectoryKind.ACCOUNT: ("accounts", "account_key"),
    DirectoryKind.USER: ("users", "user_key"),
    DirectoryKind.COMPANY: ("companies", "company_id"),
}


@dataclass(frozen=True)
class Recording:
    """One session recording and its lifecycle as the server tracks it."""

    recording_id: str
    account_key: str
    user_key: str
    company_id: str | None
    session_type: int
    start_time: int
    transcode_requested_at: float | None = None
    ready_at: float | None = None
    archived_at: float | None = None
    transcode_calls: int = 0
    archive_calls: int = 0
    archived_before_ready: bool = False

    def state_at(self, moment: float) -> RecordingState:
        """Return the recording's transcode state at an instant.

        :param moment: the instant, as a POSIX timestamp.
        :return: the state.
        """
        if self.ready_at is not None and self.ready_at <= moment:
            return RecordingState.READY_FOR_DOWNLOAD
        if self.transcode_requested_at is not None:
            return RecordingState.TRANSCODING
        return RecordingState.READY_FOR_TRANSCODE

    def to_json(self, moment: float) -> dict[str, Any]:
        """Describe the recording for the admin endpoints, instants in ISO 8601.

        :param moment: the instant the ``state`` is computed for.
        :return: a JSON-ready mapping.
        """
        return {
            "recording_id": self.recording_id,
            "account_key": self.account_key,
            "user_key": self.user_key,
            "company_id": self.company_id,
            "session_type": self.session_type,
            "start_time": format_optional_time(self.start_time),
            "transcode_requested_at": format_optional_time(self.transcode_requested_at),
            "ready_at": format_optional_time(self.ready_at),
            "archived_at": format_optional_time(self.archived_at),
            "transcode_calls": self.transcode_calls,
            "archive_calls": self.archive_calls,
            "archived_before_ready": self.archived_before_ready,
            "state": self.state_at(moment).value,
            "archived": self.archived_at is not None,
        }

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Recording:
        """Build a recording from a ``recordings`` table row.

        :param row: the row.
        :return: the recording.
        """
        return cls(
            recording_id=row["recording_id"],
            account_key=row["account_key"],
            user_key=row["user_key"],
            company_id=row["company_id"],
            session_type=row["session_type"],
            start_time=row["start_time"],
            transcode_requested_at=row["transcode_requested_at"],
            ready_at=row["ready_at"],
            archived_at=row["archived_at"],
            transcode_calls=row["transcode_calls"],
            archive_calls=row["archive_calls"],
            archived_before_ready=bool(row["archived_before_ready"]),
        )


@dataclass(frozen=True)
class RecordingQuery:
    """Which recordings a list call asks for; every criterion set must hold.

    :param account_key: only recordings of this account.
    :param user_key: only recordings of this technician.
    :param company_id: only recordings of this company.
    :param session_type: only attended (0) or unattended (1) recordings.
    :param archived: only archived recordings when true, only non-archived ones otherwise.
    :param start_at_or_after: lowest start time, inclusive.
    :param start_before: start time upper bound, exclusive.
    :param start_at_or_before: start time upper bound, inclusive.
    """

    account_key: str | None = None
    user_key: str | None = None
    company_id: str | None = None
    session_type: int | None = None
    archived: bool = False
    start_at_or_after: float | None = None
    start_before: float | None = None
    start_at_or_before: float | None = None

    def where_clause(self) -> tuple[str, dict[str, Any]]:
        """Render the criteria as an SQL condition with named parameters.

        :return: the condition and its parameters.
        """
        conditions = ["(archived_at IS NULL) = :unarchived"]
        parameters: dict[str, Any] = {"unarchived": int(not self.archived)}
        optional = (
            ("account_key = :account_key", "account_key", self.account_key),
            ("user_key = :user_key", "user_key", self.user_key),
            ("company_id = :company_id", "company_id", self.company_id),
            ("session_type = :session_type", "session_type", self.session_type),
            ("start_time >= :start_at_or_after", "start_at_or_after", self.start_at_or_after),
            ("start_time < :start_before", "start_before", self.start_before),
            ("start_time <= :start_at_or_before", "start_at_or_before", self.start_at_or_before),
        )
        for condition, name, value in optional:
            if value is not None:
                conditions.append(condition)
                parameters[name] = value
        return " AND ".join(conditions), parameters


@dataclass(frozen=True)
class AvailableRecordings:
    """The two ID lists of the list call, each in start-time order."""

    ready_for_transcode: list[str]
    ready_for_download: list[str]


@dataclass(frozen=True)
class CallCount:
    """How often one endpoint answered with one status, and how many recording IDs those calls named."""

    endpoint: str
    status: int
    calls: int
    recording_ids: int


@dataclass(frozen=True)
class FaultCount:
    """How many calls to one endpoint one kind of fault was injected into."""

    endpoint: str
    fault: str
    calls: int


class RecordingStore:
    """The server's state in one SQLite file, safe to share between request threads.

    :param path: the database file; created with its schema when missing.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        self._connection = sqlite3.connect(
            self.path, check_same_thread=False, isolation_level=None, timeout=30.0
        )
        self._connection.row_factory = sqlite3.Row
        self._connection.execute("PRAGMA journal_mode = WAL")
        self._connection.execute("PRAGMA synchronous = NORMAL")
        self._connection.execute("PRAGMA foreign_keys = ON")
        with self._lock:
            self._connection.executescript(_SCHEMA)
            # Database files written before fault injection existed lack the call log's fault column.
            call_columns = {row["name"] for row in self._connection.execute("PRAGMA table_info(calls)")}
            if "fault" not in call_columns:
                self._connection.execute("ALTER TABLE calls ADD COLUMN fault TEXT")
            recording_columns = {
                row["name"] for row in self._connection.execute("PRAGMA table_info(recordings)")
            }
            if "listed_calls" not in recording_columns:
                self._connection.execute(
                    "ALTER TABLE recordings ADD COLUMN listed_calls INTEGER NOT NULL DEFAULT 0"
                )

    def close(self) -> None:
        """Close the connection; the store cannot be used afterwards."""
        with self._lock:
            self._connection.close()

    def __enter__(self) -> RecordingStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Run statements as one write transaction, committed on success and rolled back on error.

        :return: a context manager yielding the connection.
        """
        with self._lock:
            self._connection.execute("BEGIN IMMEDIATE")
            try:
                yield self._connection
            except BaseException:
                self._connection.execute("ROLLBACK")
                raise
            self._connection.execute("COMMIT")

    def _query(self, sql: str, parameters: Sequence[Any] | dict[str, Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._connection.execute(sql, parameters).fetchall()

    def reset(self) -> None:
        """Delete every row of every table, keeping the schema."""
        with self.transaction() as connection:
            for table in _TABLES:
                connection.execute(f"DELETE FROM {table}")

    # Account directory

    def add_account(self, account_key: str, user_keys: Iterable[str], company_ids: Iterable[str]) -> None:
        """Register an account with its users and companies; existing entries are kept.

        :param account_key: the account key.
        :param user_keys: the user keys of the account's technicians.
        :param company_ids: the company IDs of the account's unattended devices.
        """
        with self.transaction() as connection:
            connection.execute("INSERT OR IGNORE INTO accounts (account_key) VALUES (?)", (account_key,))
            connection.executemany(
                "INSERT OR IGNORE INTO users (user_key, account_key) VALUES (?, ?)",
                [(user_key, account_key) for user_key in user_keys],
            )
            connection.executemany(
                "INSERT OR IGNORE INTO companies (company_id, account_key) VALUES (?, ?)",
                [(company_id, account_key) for company_id in company_ids],
            )

    def is_known_key(self, kind: DirectoryKind, key: str) -> bool:
        """Tell whether an account key, user key or company ID exists.

        :param kind: which kind of key.
        :param key: the key as a digit string.
        :return: true if it is registered.
        """
        table, column = _DIRECTORY_TABLES[kind]
        rows = self._query(f"SELECT 1 FROM {table} WHERE {column} = ?", (key,))
        return bool(rows)

    # OAuth credentials

    def save_client(self, client_id: str, client_secret: str) -> None:
        """Register an OAuth client, replacing the secret of an existing one.

        :param client_id: the client ID.
        :param client_secret: the client secret.
        """
        with self.transaction() as connection:
            connection.execute(
                "INSERT INTO clients (client_id, client_secret) VALUES (?, ?) "
                "ON CONFLICT (client_id) DO UPDATE SET client_secret = excluded.client_secret",
                (client_id, client_secret),
            )

    def client_matches(self, client_id: str, client_secret: str) -> bool:
        """Check a client's credentials.

        :param client_id: the client ID.
        :param client_secret: the secret to check.
        :return: true if the client exists and the secret is its own.
        """
        rows = self._query("SELECT client_secret FROM clients WHERE client_id = ?", (client_id,))
        if not rows:
            return False
        return hmac.compare_digest(rows[0]["client_secret"].encode(), client_secret.encode())

    def save_refresh_token(self, token: str, client_id: str, issued_at: float) -> None:
        """Store a refresh token for a client; a revoked token of the same value becomes valid again.

        :param token: the refresh token.
        :param client_id: the client it was issued to.
        :param issued_at: when it was issued.
        """
        with self.transaction() as connection:
            connection.execute(
                "INSERT INTO refresh_tokens (token, client_id, issued_at) VALUES (?, ?, ?) "
                "ON CONFLICT (token) DO UPDATE SET client_id = excluded.client_id, "
                "issued_at = excluded.issued_at, revoked_at = NULL",
                (token, client_id, issued_at),
            )

    def is_active_refresh_token(self, token: str, client_id: str) -> bool:
        """Tell whether a refresh token was issued to a client and not revoked.

        :param token: the refresh token.
        :param client_id: the client presenting it.
        :return: true if the token may be used.
        """
        rows = self._query(
            "SELECT 1 FROM refresh_tokens WHERE token = ? AND client_id = ? AND revoked_at IS NULL",
            (token, client_id),
        )
        return bool(rows)

    def rotate_refresh_token(self, old_token: str, new_token: str, client_id: str, now: float) -> bool:
        """Replace a refresh token with a new one in a single step.

        :param old_token: the token presented; revoked on success.
        :param new_token: the token issued in its place.
        :param client_id: the client presenting the token.
        :param now: the current instant.
        :return: false, changing nothing, if the old token was not active for this client.
        """
        with self.transaction() as connection:
            revoked = connection.execute(
                "UPDATE refresh_tokens SET revoked_at = ? "
                "WHERE token = ? AND client_id = ? AND revoked_at IS NULL",
                (now, old_token, client_id),
            ).rowcount
            if not revoked:
                return False
            connection.execute(
                "INSERT INTO refresh_tokens (token, client_id, issued_at) VALUES (?, ?, ?)",
                (new_token, client_id, now),
            )
        return True

    def save_personal_access_token(self, token: str, created_at: float) -> None:
        """Store a personal access token; an existing one is kept.

        :param token: the personal access token.
        :param created_at: when it was created.
        """
        with self.transaction() as connection:
            connection.execute(
                "INSERT OR IGNORE INTO personal_access_tokens (token, created_at) VALUES (?, ?)",
                (token, created_at),
            )

    def is_personal_access_token(self, token: str) -> bool:
        """Tell whether a personal access token exists.

        :param token: the token.
        :return: true if it exists.
        """
        return bool(self._query("SELECT 1 FROM personal_access_tokens WHERE token = ?", (token,)))

    def save_access_token(self, token: str, client_id: str, issued_at: float, expires_at: float) -> None:
        """Store an issued access token.

        :param token: the access token.
        :param client_id: the client it was issued to.
        :param issued_at: when it was issued.
        :param expires_at: when it stops working.
        """
        with self.transaction() as connection:
            connection.execute(
                "INSERT INTO access_tokens (token, client_id, issued_at, expires_at) VALUES (?, ?, ?, ?)",
                (token, client_id, issued_at, expires_at),
            )

    def is_valid_access_token(self, token: str, now: float) -> bool:
        """Tell whether an access token exists and has not expired.

        :param token: the access token.
        :param now: the current instant.
        :return: true if the token grants access.
        """
        rows = self._query("SELECT 1 FROM access_tokens WHERE token = ? AND expires_at > ?", (token, now))
        return bool(rows)

    # Recordings

    def add_recordings(self, recordings: Iterable[Recording]) -> None:
        """Insert new recordings.

        :param recordings: the recordings; their IDs must not exist yet.
        :raises sqlite3.IntegrityError: if an ID exists already.
        """
        rows = [
            (
                recording.recording_id,
                recording.account_key,
                recording.user_key,
                recording.company_id,
                recording.session_type,
                recording.start_time,
                recording.transcode_requested_at,
                recording.ready_at,
                recording.archived_at,
            )
            for recording in recordings
        ]
        with self.transaction() as connection:
            connection.executemany(
                "INSERT INTO recordings (recording_id, account_key, user_key, company_id, session_type, "
                "start_time, transcode_requested_at, ready_at, archived_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )

    def existing_recording_ids(self) -> set[str]:
        """Return the IDs of all stored recordings.

        :return: the IDs.
        """
        return {row[0] for row in self._query("SELECT recording_id FROM recordings")}

    def list_available(self, query: RecordingQuery, now: float, limit: int) -> AvailableRecordings:
        """Answer a list call: matching recordings split by readiness, earliest start first.

        :param query: the criteria.
        :param now: the instant readiness is judged at.
        :param limit: the most IDs in each of the two lists.
        :return: the two lists.
        """
        where, parameters = query.where_clause()
        parameters = {**parameters, "now": now, "limit": limit}
        select = (
            "SELECT recording_id, start_time FROM recordings INDEXED BY {index} WHERE {where} AND {state} "
        )
        order = "ORDER BY start_time, recording_id LIMIT :limit"

        def ordered_rows(index: str, state: str) -> list[tuple[int, str]]:
            sql = select.format(index=index, where=where, state=state) + order
            return [(row["start_time"], row["recording_id"]) for row in self._query(sql, parameters)]

        ready = ordered_rows("recordings_by_lifecycle", "(ready_at IS NULL) = 0 AND ready_at <= :now")
        # Not ready: never transcoded, or transcoding still; two ordered walks merged.
        untranscoded = ordered_rows("recordings_by_lifecycle", "(ready_at IS NULL) = 1")
        transcoding = ordered_rows("recordings_by_ready_at", "ready_at > :now")
        not_ready = list(heapq.merge(untranscoded, transcoding))[:limit]
        named = [recording_id for _, recording_id in ready + not_ready]
        if named:
            with self.transaction() as connection:
                connection.executemany(
                    "UPDATE recordings SET listed_calls = listed_calls + 1 WHERE recording_id = ?",
                    [(recording_id,) for recording_id in named],
                )
        return AvailableRecordings(
            ready_for_transcode=[recording_id for _, recording_id in not_ready],
            ready_for_download=[recording_id for _, recording_id in ready],
        )

    def recordings_by_id(self, recording_ids: Sequence[str]) -> dict[str, Recording]:
        """Look recordings up by ID, leaving out those of no registered account.

        :param recording_ids: the IDs; duplicates are allowed.
        :return: the recordings found, by ID.
        """
        rows = self._query(
            "SELECT r.* FROM recordings AS r JOIN accounts AS a ON a.account_key = r.account_key "
            f"WHERE r.recording_id IN ({_NAMED_IDS})",
            {"ids": json.dumps(list(recording_ids))},
        )
        return {row["recording_id"]: Recording.from_row(row) for row in rows}

    def recording(self, recording_id: str) -> Recording | None:
        """Look one recording up.

        :param recording_id: the ID.
        :return: the recording, or ``None`` if there is none of that ID.
        """
        return self.recordings_by_id([recording_id]).get(recording_id)

    def recordings_started_between(self, start: float | None, end: float | None) -> list[Recording]:
        """Return recordings in start-time order, optionally only those started in ``[start, end)``.

        :param start: the lowest start time, inclusive, or ``None`` for no bound.
        :param end: the start time upper bound, exclusive, or ``None`` for no bound.
        :return: the recordings.
        """
        rows = self._query(
            "SELECT * FROM recordings WHERE (:start IS NULL OR start_time >= :start) "
            "AND (:end IS NULL OR start_time < :end) ORDER BY start_time, recording_id",
            {"start": start, "end": end},
        )
        return [Recording.from_row(row) for row in rows]

    def request_transcode(self, recording_ids: Sequence[str], now: float, delay: float) -> list[str]:
        """Start transcoding recordings, or change nothing if any ID is invalid.

        The first request sets ``transcode_requested_at`` and, unless the recording is ready already,
        ``ready_at`` to ``now + delay``. Every request counts in ``transcode_calls``.

        :param recording_ids: the IDs; duplicates count once.
        :param now: the current instant.
        :param delay: seconds transcoding takes.
        :return: the invalid IDs, in request order; empty if the request was applied.
        """
        with self.transaction() as connection:
            invalid = self._invalid_recording_ids(connection, recording_ids)
            if invalid:
                return invalid
            connection.execute(
                "UPDATE recordings SET "
                "transcode_requested_at = COALESCE(transcode_requested_at, :now), "
                "ready_at = COALESCE(ready_at, :now + :delay), "
                "transcode_calls = transcode_calls + 1 "
                f"WHERE recording_id IN ({_NAMED_IDS})",
                {"now": now, "delay": delay, "ids": json.dumps(list(recording_ids))},
            )
        return []

    def mark_archived(self, recording_ids: Sequence[str], now: float) -> list[str]:
        """Mark recordings archived, or change nothing if any ID is invalid.

        A recording not ready for download at ``now`` gets ``archived_before_ready`` set: the real API
        accepts such a call, and it is exactly the data loss a careful client must never cause.

        :param recording_ids: the IDs; duplicates count once.
        :param now: the current instant.
        :return: the invalid IDs, in request order; empty if the request was applied.
        """
        with self.transaction() as connection:
            invalid = self._invalid_recording_ids(connection, recording_ids)
            if invalid:
                return invalid
            connection.execute(
                "UPDATE recordings SET "
                "archived_before_ready = CASE WHEN ready_at IS NULL OR ready_at > :now "
                "THEN 1 ELSE archived_before_ready END, "
                "archived_at = COALESCE(archived_at, :now), "
                "archive_calls = archive_calls + 1 "
                f"WHERE recording_id IN ({_NAMED_IDS})",
                {"now": now, "ids": json.dumps(list(recording_ids))},
            )
        return []

    @staticmethod
    def _invalid_recording_ids(connection: sqlite3.Connection, recording_ids: Sequence[str]) -> list[str]:
        rows = connection.execute(
            "SELECT r.recording_id FROM recordings AS r JOIN accounts AS a ON a.account_key = r.account_key "
            f"WHERE r.recording_id IN ({_NAMED_IDS})",
            {"ids": json.dumps(list(recording_ids))},
        ).fetchall()
        valid = {row[0] for row in rows}
        return list(dict.fromkeys(rid for rid in recording_ids if rid not in valid))

    # Call log and statistics

    def record_call(
        self,
        called_at: float,
        method: str,
        endpoint: str,
        status: int,
        recording_id_count: int,
        fault: str | None = None,
    ) -> None:
        """Log one API call.

        :param called_at: when the call arrived.
        :param method: the HTTP method.
        :param endpoint: the endpoint name, e.g. ``transcode``.
        :param status: the HTTP status returned; 0 if the connection was closed without an answer.
        :param recording_id_count: how many recording IDs the call named.
        :param fault: the fault injected into the call, e.g. ``drop-after``; ``None`` for none.
        """
        with self.transaction() as connection:
            connection.execute(
                "INSERT INTO calls (called_at, method, endpoint, status, recording_id_count, fault) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (called_at, method, endpoint, status, recording_id_count, fault),
            )

    def call_counts(self) -> list[CallCount]:
        """Count the logged calls by endpoint and status.

        :return: one entry per endpoint and status, sorted.
        """
        rows = self._query(
            "SELECT endpoint, status, COUNT(*) AS calls, SUM(recording_id_count) AS recording_ids "
            "FROM calls GROUP BY endpoint, status ORDER BY endpoint, status"
        )
        return [
            CallCount(
                endpoint=row["endpoint"],
                status=row["status"],
                calls=row["calls"],
                recording_ids=row["recording_ids"],
            )
            for row in rows
        ]

    def fault_counts(self) -> list[FaultCount]:
        """Count the logged calls that had a fault injected, by endpoint and fault.

        :return: one entry per endpoint and fault, sorted.
        """
        rows = self._query(
            "SELECT endpoint, fault, COUNT(*) AS calls FROM calls WHERE fault IS NOT NULL "
            "GROUP BY endpoint, fault ORDER BY endpoint, fault"
        )
        return [FaultCount(endpoint=row["endpoint"], fault=row["fault"], calls=row["calls"]) for row in rows]

    def state_counts_by_period(self, now: float, period_seconds: int) -> list[sqlite3.Row]:
        """Count recordings by start period, state and archived flag.

        Grouping by short periods first keeps the work in SQL; the caller maps each period to its
        local day.

        :param now: the instant states are judged at.
        :param period_seconds: the period length; a divisor of every UTC offset keeps days exact.
        :return: rows of ``period_start``, ``state``, ``archived`` and ``count``.
        """
        return self._query(
            f"SELECT (start_time / :period) * :period AS period_start, {_STATE_SQL} AS state, "
            "archived_at IS NOT NULL AS archived, COUNT(*) AS count "
            "FROM recordings GROUP BY period_start, state, archived ORDER BY period_start",
            {"now": now, "period": period_seconds},
        )

    def window_summary(self, start: float, end: float, now: float) -> sqlite3.Row:
        """Summarise the recordings started in ``[start, end)`` and those touched outside it.

        :param start: the window start, inclusive.
        :param end: the window end, exclusive.
        :param now: the instant readiness is judged at.
        :return: a row of counts: ``total``, ``listed``, ``transcoded``, ``ready``, ``archived``,
            ``archived_before_ready`` and ``touched_outside``.
        """
        inside = "start_time >= :start AND start_time < :end"
        return self._query(
            "SELECT "
            f"COALESCE(SUM({inside}), 0) AS total, "
            f"COALESCE(SUM({inside} AND listed_calls > 0), 0) AS listed, "
            f"COALESCE(SUM({inside} AND transcode_calls > 0), 0) AS transcoded, "
            f"COALESCE(SUM({inside} AND ready_at IS NOT NULL AND ready_at <= :now), 0) AS ready, "
            f"COALESCE(SUM({inside} AND archived_at IS NOT NULL), 0) AS archived, "
            f"COALESCE(SUM({inside} AND archived_before_ready), 0) AS archived_before_ready, "
            f"COALESCE(SUM(NOT ({inside}) AND (transcode_calls > 0 OR archive_calls > 0)), 0) "
            "AS touched_outside "
            "FROM recordings",
            {"start": start, "end": end, "now": now},
        )[0]


@contextlib.contextmanager
def open_store(db: RecordingStore | str | os.PathLike[str]) -> Iterator[RecordingStore]:
    """Use an open store as it is, or open one on a database file for the duration of a block.

    :param db: an open store, or the path of a database file.
    :return: a context manager yielding the store; a store it opened is closed on exit.
    """
    if isinstance(db, RecordingStore):
        yield db
        return
    with RecordingStore(db) as store:
        yield store
