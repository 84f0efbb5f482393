"""Files a user hands to `selfheal analyze`: saved logs (tail-bounded) and policy YAML."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from selfheal.errors import ConfigError

# Saved logs are bounded like live ones: the tail of each file, at most this many bytes.
MAX_LOG_BYTES = 64 * 1024 * 1024


def read_log(path: str) -> str:
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"log file not found: {path}")
    size = file.stat().st_size
    with file.open("rb") as handle:
        if size > MAX_LOG_BYTES:
            handle.seek(size - MAX_LOG_BYTES)
        return handle.read().decode("utf-8", errors="replace")


def read_resource(path: str, kind: str) -> dict[str, Any]:
    """The first object of ``kind`` in a (multi-document) YAML file."""
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"policy file not found: {path}")
    try:
        docs = [d for d in yaml.safe_load_all(file.read_text()) if d]
    except yaml.YAMLError as e:
        raise ConfigError(f"{path} is not valid YAML: {e}") from e
    found = next((d for d in docs if isinstance(d, dict) and d.get("kind") == kind), None)
    if found is None:
        raise ConfigError(f"{path} holds no {kind}")
    return found
