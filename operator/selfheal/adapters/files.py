"""Files a user hands to `selfheal analyze`: saved logs (tail-bounded) and policy YAML (size- and alias-bounded)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from selfheal.errors import ConfigError

# Saved logs are bounded like live ones: the tail of each file, at most this many bytes.
MAX_LOG_BYTES = 64 * 1024 * 1024
# A policy is a few kilobytes; these bounds refuse a hostile file before it costs anything.
MAX_POLICY_BYTES = 1024 * 1024
MAX_ALIASES = 64


class _BoundedLoader(yaml.SafeLoader):
    """The safe loader, refusing more than `MAX_ALIASES` aliases (a "billion laughs" file is all aliases)."""

    aliases = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self.aliases += 1
            if self.aliases > MAX_ALIASES:
                event = self.peek_event()
                raise yaml.composer.ComposerError(
                    None, None, f"more than {MAX_ALIASES} aliases; refused", event.start_mark
                )
        return super().compose_node(parent, index)


def read_log(path: str) -> str:
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"log file not found: {path}")
    try:
        size = file.stat().st_size
        with file.open("rb") as handle:
            if size > MAX_LOG_BYTES:
                handle.seek(size - MAX_LOG_BYTES)
            return handle.read().decode("utf-8", errors="replace")
    except OSError as e:
        raise ConfigError(f"cannot read log file {path}: {e.strerror or e}") from e


def load_yaml_documents(text: str, source: str) -> list[Any]:
    """Every document of a YAML text; a ConfigError for invalid YAML or too many aliases."""
    try:
        return list(yaml.load_all(text, Loader=_BoundedLoader))
    except yaml.YAMLError as e:
        raise ConfigError(f"{source} is not valid YAML: {_one_line(e)}") from e
    except RecursionError as e:
        raise ConfigError(f"{source} is nested too deeply to be a policy") from e


def _one_line(e: yaml.YAMLError) -> str:
    """A YAML error in one line: what is wrong and where (PyYAML's own text quotes the source over lines)."""
    problem = getattr(e, "problem", None) or getattr(e, "context", None) or type(e).__name__
    mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
    return " ".join(str(problem).split()) + where


def read_resource(path: str, kind: str) -> dict[str, Any]:
    """The one object of ``kind`` in a (multi-document) YAML file; a ConfigError says what is wrong."""
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"policy file not found: {path}")
    try:
        if file.stat().st_size > MAX_POLICY_BYTES:
            raise ConfigError(f"{path} is larger than {MAX_POLICY_BYTES // 1024} KiB; not a policy file")
        raw = file.read_bytes()
    except OSError as e:
        raise ConfigError(f"cannot read policy file {path}: {e.strerror or e}") from e
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path} is not UTF-8 text (byte {e.start}: {raw[e.start : e.start + 1]!r})") from e
    docs = [d for d in load_yaml_documents(text, path) if d is not None]
    if not docs:
        raise ConfigError(f"{path} is empty: it holds no {kind}")
    found = [d for d in docs if isinstance(d, dict) and d.get("kind") == kind]
    if not found:
        kinds = sorted({str(d.get("kind")) if isinstance(d, dict) else type(d).__name__ for d in docs})
        raise ConfigError(f"{path} holds no {kind} (found: {', '.join(kinds)[:200]})")
    if len(found) > 1:
        raise ConfigError(f"{path} holds {len(found)} {kind} objects; pass a file with one")
    return found[0]
