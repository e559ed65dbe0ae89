"""Recording IDs, chunks and the typed values the GoToAssist API returns."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Annotated, Any, Literal

import pendulum
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
)

from gotoassist_recordings.exceptions import ChunkTooLargeError, InvalidRecordingIdError, InvalidResponseError

#: The API refuses more IDs than this in one call and never returns more in one list.
MAX_IDS_PER_CALL = 500

# Recording IDs are long integers; they travel as exact digit strings so they can
# never change a URL path (no ``/``, ``..``, ``%2F`` or spaces) or lose precision as floats.
_RECORDING_ID = re.compile(r"[0-9]{1,40}")


def to_recording_id(value: Any) -> str:
    """Return ``value`` as a recording ID string, or raise naming what is wrong with it.

    :param value: a digit string or a non-negative integer.
    :raises InvalidRecordingIdError: for anything else (floats, booleans, negative numbers,
        empty strings, strings holding anything but digits).
    """
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise InvalidRecordingIdError(
            f"Recording ID {value!r} is a {type(value).__name__}; expected a string of digits"
        )
    text = str(value)
    if not _RECORDING_ID.fullmatch(text):
        raise InvalidRecordingIdError(f"Recording ID {text!r} is not a non-empty string of digits")
    return text


def normalize_recording_ids(values: Any) -> list[str]:
    """Validate recording IDs and drop duplicates, keeping the first occurrence's order.

    :param values: a list (or other non-string iterable) of recording IDs.
    :return: the distinct IDs as digit strings.
    :raises InvalidRecordingIdError: if ``values`` is not a list of valid IDs.
    """
    if isinstance(values, (str, bytes, dict)) or not isinstance(values, Iterable):
        raise InvalidRecordingIdError(
            f"Expected a list of recording IDs, got {type(values).__name__}: {values!r:.80}"
        )
    return list(dict.fromkeys(to_recording_id(value) for value in values))


def check_chunk_size(recording_ids: list[str], call: str) -> None:
    """Refuse a chunk the API would refuse, before any request is made.

    :raises ChunkTooLargeError: if the chunk holds more than :data:`MAX_IDS_PER_CALL` IDs.
    """
    if len(recording_ids) > MAX_IDS_PER_CALL:
        raise ChunkTooLargeError(
            f"The {call} call accepts at most {MAX_IDS_PER_CALL} recording IDs, got {len(recording_ids)}"
        )


def split_into_chunks(recording_ids: list[str], size: int = MAX_IDS_PER_CALL) -> list[list[str]]:
    """Cut recording IDs into consecutive chunks of at most ``size`` IDs."""
    if not 1 <= size <= MAX_IDS_PER_CALL:
        raise ValueError(f"Chunk size must be between 1 and {MAX_IDS_PER_CALL}, got {size}")
    return [recording_ids[start : start + size] for start in range(0, len(recording_ids), size)]


def describe_problems(error: ValidationError, *, whole: str, most: int | None = None) -> str:
    """Say in one line what a validation found wrong, field by field.

    :param whole: what to call the value itself, for a problem with no field (e.g. ``body``).
    :param most: name at most this many problems; all of them when ``None``.
    """
    problems = error.errors()[:most] if most else error.errors()
    return "; ".join(
        f"{'.'.join(str(part) for part in problem['loc']) or whole}: {problem['msg']}" for problem in problems
    )


def _parse_recording_id(value: Any) -> str:
    try:
        return to_recording_id(value)
    except InvalidRecordingIdError as error:
        # pydantic reports ValueError subclasses as validation errors with this message.
        raise ValueError(str(error)) from None


RecordingId = Annotated[str, BeforeValidator(_parse_recording_id)]


# The models of this package build their validators on first use (``defer_build``): the DAG file
# imports them, and it is parsed far more often than a task validates anything.
class _ApiModel(BaseModel):
    model_config = ConfigDict(populate_by_name=True, frozen=True, extra="ignore", defer_build=True)

    @classmethod
    def parse_api(cls, payload: Any, call: str):
        """Validate a decoded JSON payload, turning validation errors into one readable message."""
        try:
            return cls.model_validate(payload)
        except ValidationError as error:
            raise InvalidResponseError(
                f"GoToAssist {call} response is not as documented: "
                f"{describe_problems(error, whole='body', most=5)}"
            ) from None


class RecordingList(_ApiModel):
    """One answer of the list call: IDs in start-time order, at most 500 in each list."""

    ready_for_transcode: list[RecordingId] = Field(alias="readyForTranscode")
    ready_for_download: list[RecordingId] = Field(alias="readyForDownload")

    @field_validator("ready_for_transcode", "ready_for_download")
    @classmethod
    def _within_limit(cls, ids: list[str]) -> list[str]:
        if len(ids) > MAX_IDS_PER_CALL:
            raise ValueError(f"holds {len(ids)} IDs, more than the documented {MAX_IDS_PER_CALL}")
        return ids

    @property
    def is_full(self) -> bool:
        """Whether either list reached the cap, so more recordings may have been cut off."""
        return max(len(self.ready_for_transcode), len(self.ready_for_download)) >= MAX_IDS_PER_CALL


class DownloadLinks(_ApiModel):
    """Where one ready recording's files can be fetched."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    recording_id: RecordingId = Field(alias="recordingId")
    recording_url: str = Field(alias="recordingUrl")
    events_url: str = Field(alias="eventsUrl")
    thumbnail_url: str = Field(alias="thumbnailUrl")
    recording_start_time: pendulum.DateTime = Field(alias="recordingStartTime")
    recording_size: int = Field(alias="recordingSize", ge=0)

    @field_validator("recording_start_time", mode="before")
    @classmethod
    def _parse_time(cls, value: Any) -> pendulum.DateTime:
        parsed = pendulum.parse(str(value))
        if not isinstance(parsed, pendulum.DateTime):
            raise ValueError(f"{value!r} is not a date and time")
        return parsed.in_timezone("UTC")


class DownloadLinksList(_ApiModel):
    """The answer of the download-links call: one entry per named recording that is ready."""

    links: list[DownloadLinks]

    @classmethod
    def parse_api(cls, payload: Any, call: str) -> DownloadLinksList:
        return super().parse_api({"links": payload}, call)


def _optional_digits(value: Any) -> Any:
    # Keys are long integers: accept them as JSON numbers too, but never as floats or booleans.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if value == "":
        return None
    return value


#: An account key, user key or company ID: a digit string, or unset. Empty strings count as unset.
OptionalDigits = Annotated[
    Annotated[str, StringConstraints(pattern=r"^[0-9]+$")] | None,
    BeforeValidator(_optional_digits),
]


class RecordingFilter(BaseModel):
    """Which recordings the list call returns, besides the time window.

    At least one of the three keys must be set, here or in the connection.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    account_key: OptionalDigits = None
    user_key: OptionalDigits = None
    company_id: OptionalDigits = None
    session_type: Literal[0, 1] | None = None
    """0 for attended sessions, 1 for unattended ones; ``None`` for both."""

    @property
    def has_key(self) -> bool:
        return bool(self.account_key or self.user_key or self.company_id)

    def or_defaults(self, defaults: RecordingFilter) -> RecordingFilter:
        """Fill the keys left unset here from ``defaults`` (the connection's)."""
        if self.has_key:
            return self
        return self.model_copy(
            update={
                "account_key": defaults.account_key,
                "user_key": defaults.user_key,
                "company_id": defaults.company_id,
            }
        )

    def api_params(self) -> dict[str, str]:
        """Render the filter as the list call's query parameters."""
        params = {
            "accountKey": self.account_key,
            "userKey": self.user_key,
            "companyId": self.company_id,
            "sessionType": None if self.session_type is None else str(self.session_type),
        }
        return {name: value for name, value in params.items() if value is not None}

    def __str__(self) -> str:
        return ", ".join(f"{name}={value}" for name, value in self.api_params().items()) or "no filter"
