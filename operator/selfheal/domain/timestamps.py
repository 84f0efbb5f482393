"""Kubernetes timestamps: RFC 3339 text to aware datetimes and back."""

from __future__ import annotations

from datetime import datetime
from typing import Any


def parse_time(value: Any) -> datetime | None:
    """A datetime from the apiserver's RFC 3339 text (``...Z``); None for anything else."""
    if isinstance(value, datetime):
        return value
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def rfc3339(value: datetime | None) -> str | None:
    """The apiserver's spelling of a UTC datetime (``2026-11-26T10:00:00Z``)."""
    return value.isoformat().replace("+00:00", "Z") if value else None
