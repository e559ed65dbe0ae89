"""Adds the "GoToAssist recordings" page to the Airflow UI; the code lives in the installed package."""

from __future__ import annotations

from gotoassist_recordings.ui.plugin import GoToAssistRecordingsPlugin

__all__ = ["GoToAssistRecordingsPlugin"]
