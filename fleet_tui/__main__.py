"""`python -m fleet_tui` is `fleet-tui`."""

from __future__ import annotations

import sys

from fleet_tui.cli import main

sys.exit(main())
