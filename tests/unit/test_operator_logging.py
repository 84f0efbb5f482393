"""The operator's log says what selfheal decided; Kopf's per-handler success lines stay at debug."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from selfheal.handlers.startup import QuietKopfSuccess


@pytest.fixture
def root_level() -> Iterator[logging.Logger]:
    root = logging.getLogger()
    before = root.level
    yield root
    root.setLevel(before)


def record(message: str, level: int = logging.INFO) -> logging.LogRecord:
    return logging.LogRecord("kopf.objects", level, __file__, 1, message, None, None)


def test_kopf_success_lines_are_quiet_at_info_and_kept_at_debug(root_level: logging.Logger) -> None:
    quiet = QuietKopfSuccess()
    root_level.setLevel(logging.INFO)
    for line in (
        "Handler 'rollout-triggers' succeeded.",
        "Timer 'policy-tick' succeeded.",
        "Creation is processed: 1 succeeded; 0 failed.",
    ):
        assert not quiet.filter(record(line))
    assert quiet.filter(record("Handler 'rollout-triggers' failed temporarily: GitHub down", logging.WARNING))
    assert quiet.filter(record("Handler 'x' succeeded.", logging.WARNING))
    assert quiet.filter(record("decided on shop/web revision 2: unhealthy"))
    root_level.setLevel(logging.DEBUG)
    assert quiet.filter(record("Handler 'rollout-triggers' succeeded."))
