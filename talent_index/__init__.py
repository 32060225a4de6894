"""City Talent Retention Index pipeline: command-line entry point and environment defaults."""

import os
from pathlib import Path

__version__ = "0.1.0"

CHECKOUT = Path(__file__).resolve().parent.parent


def quiet_defaults() -> None:
    """Telemetry off and Prefect's home inside the checkout unless the user chose otherwise."""
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_HOME", str(CHECKOUT / ".prefect"))
    # the temporary server's first start migrates a new database: 20 s (the default) is too short
    # on a busy 2-core machine
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
