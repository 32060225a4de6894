"""Secrets come only from the environment (or Prefect blocks) and are scrubbed from anything we print."""

from __future__ import annotations

import os
import re

_SECRET_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|WEBHOOK|CREDENTIAL)", re.IGNORECASE)
_URL_CREDENTIALS = re.compile(r"(?<=://)[^/@\s:]+:[^/@\s]+@")
_QUERY_SECRET = re.compile(r"((?:api_key|apikey|token|access_token|key)=)(?!\$\{)[^&\s\"']+", re.IGNORECASE)


def secret_values() -> list[str]:
    """Values of environment variables whose names say they hold a secret (6+ characters)."""
    return sorted(
        {v for k, v in os.environ.items() if _SECRET_NAME.search(k) and v and len(v) >= 6}, key=len, reverse=True
    )


def redact(text: str) -> str:
    """Replace secret values, URL credentials and secret-looking query parameters with ***."""
    out = str(text)
    for v in secret_values():
        out = out.replace(v, "***")
    out = _URL_CREDENTIALS.sub("***@", out)
    return _QUERY_SECRET.sub(r"\1***", out)
