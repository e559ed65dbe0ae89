"""Run the local GoToAssist API server's command line: ``python -m gotoassist_api_server``."""

from __future__ import annotations

import sys

from gotoassist_api_server.cli import main

sys.exit(main())
