"""Where the browser tests save their screenshots.

A test run must not change the checkout: by default the shots go to the
test's own temporary directory; ``PIVOT_UPDATE_SCREENSHOTS=1`` writes them to
``docs/screenshots/`` instead, to refresh the pictures the docs show.
"""

from __future__ import annotations

import os
from pathlib import Path

DOCS = Path(__file__).parents[2] / "docs" / "screenshots"


def screenshot_dir(scratch: Path) -> Path:
    """``docs/screenshots`` when asked to update them, else ``scratch/screenshots``."""
    shots = DOCS if os.environ.get("PIVOT_UPDATE_SCREENSHOTS") == "1" else scratch / "screenshots"
    shots.mkdir(exist_ok=True)
    return shots
