"""Errors raised by the GoToAssist hook and operators."""

from __future__ import annotations


class GoToAssistError(Exception):
    """Base class of every error this package raises on purpose."""


class InvalidRecordingIdError(GoToAssistError, ValueError):
    """A recording ID is not a plain digit string, so it must never reach a URL."""


class ChunkTooLargeError(GoToAssistError, ValueError):
    """More recording IDs were given to one call than the API accepts."""


class GoToAssistConfigError(GoToAssistError, ValueError):
    """The Airflow connection holds a setting the package cannot use."""


class GoToAssistApiError(GoToAssistError):
    """The API answered with an error that retrying will not fix.

    :param call: the API call that failed, e.g. ``"transcode"``.
    :param status: the HTTP status code.
    :param reason: what the server said was wrong, already free of secrets.
    """

    def __init__(self, call: str, status: int, reason: str) -> None:
        self.call = call
        self.status = status
        self.reason = reason
        super().__init__(f"GoToAssist {call} call failed with HTTP {status}: {reason}")


class GoToAssistTransientError(GoToAssistApiError):
    """The API answered with an error worth retrying (429 or 5xx).

    :param retry_after: seconds the server asked the client to wait, if it said so.
    """

    def __init__(self, call: str, status: int, reason: str, retry_after: float | None = None) -> None:
        super().__init__(call, status, reason)
        self.retry_after = retry_after


class CredentialsRefusedError(GoToAssistApiError):
    """The API or the token endpoint refused the credentials of the connection."""


class InvalidResponseError(GoToAssistError):
    """The API answered with a body that does not match its contract."""


class IncompleteDownloadError(GoToAssistError):
    """A file's body ended before the length its ``Content-Length`` announced; a new try may succeed."""


class RecordingFileSizeError(GoToAssistError):
    """A recording's file arrived whole but its size is not the one the download-links call advertised.

    The file is not stored. Fetching it again at once is not likely to help, so it is not retried
    within the task; the recording stays unarchived.
    """


class InvalidTriggerEventError(GoToAssistError):
    """A deferred task was resumed with an event that its trigger could not have sent."""


class RecordingsRefusedError(GoToAssistApiError):
    """The API refused some recording IDs as invalid; all other IDs were processed.

    :param refused_ids: the recording IDs the API refused.
    """

    def __init__(self, call: str, refused_ids: list[str]) -> None:
        self.refused_ids = refused_ids
        super().__init__(
            call,
            403,
            f"{len(refused_ids)} recording ID(s) refused as invalid: {', '.join(refused_ids)}",
        )
