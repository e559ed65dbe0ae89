"""The nightly DAG's settings, read from ``GOTOASSIST_*`` environment variables when it is parsed.

They are checked all together, and a wrong one fails the parse with an error naming the variable,
so it shows as an import error in the UI rather than as a night of failed tasks.
"""

from __future__ import annotations

from typing import Any

import pendulum
from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from gotoassist_recordings.downloads import check_destination
from gotoassist_recordings.exceptions import GoToAssistConfigError
from gotoassist_recordings.settings import DEFAULT_CONN_ID

ENV_PREFIX = "GOTOASSIST_"
#: The most days back the look-back sweep may list; a run lists its window and these days.
MAX_LOOK_BACK_DAYS = 31


class NightlyDagSettings(BaseSettings):
    """What a deployment may change about the nightly DAG without editing it."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    timezone: str = Field(default="UTC", description="IANA timezone whose days the runs cover.")
    conn_id: str = Field(default=DEFAULT_CONN_ID, min_length=1, description="The gotoassist connection.")
    ready_poke_interval: float = Field(
        default=300.0, gt=0, description="Seconds from transcoding to the first readiness check of a chunk."
    )
    deferrable: bool = Field(default=True, description="Wait for transcoding in the triggerer.")
    look_back_days: int = Field(
        default=7, ge=0, le=MAX_LOOK_BACK_DAYS, description="Days before the window swept for leftovers."
    )
    api_pool: str = Field(default="gotoassist_api", min_length=1, description="Pool of the API tasks.")
    download_to: str = Field(default="", description="Where to store the files; empty for no downloads.")

    @field_validator("*", mode="before")
    @classmethod
    def _without_surrounding_blanks(cls, value: Any) -> Any:
        return value.strip() if isinstance(value, str) else value

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, name: str) -> str:
        try:
            pendulum.timezone(name)
        except Exception:
            raise ValueError(f"{name!r} is not an IANA timezone such as Europe/Berlin") from None
        return name

    @field_validator("download_to")
    @classmethod
    def _usable_destination(cls, destination: str) -> str:
        try:
            return check_destination(destination, allow_empty=True, name="the value")
        except GoToAssistConfigError as error:
            raise ValueError(str(error)) from None

    @classmethod
    def from_environment(cls) -> NightlyDagSettings:
        """Read and check the settings.

        :raises GoToAssistConfigError: naming every variable whose value is wrong, and why.
        """
        try:
            return cls()
        except ValidationError as error:
            problems = "; ".join(
                f"{ENV_PREFIX}{'.'.join(str(part) for part in problem['loc']).upper()}: {_reason(problem)}"
                for problem in error.errors()
            )
            raise GoToAssistConfigError(f"The nightly DAG's settings are wrong: {problems}") from None


def _reason(problem: Any) -> str:
    # A check of this module's own says why in its own words; pydantic's are prefixed "Value error, ".
    error = problem.get("ctx", {}).get("error")
    return str(error) if problem["type"] == "value_error" and error else problem["msg"]
