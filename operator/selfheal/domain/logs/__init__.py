"""Log text turned into templates: masking, severity, event splitting, field recognition and mining."""

from selfheal.domain.logs.events import parse_events, strip_ansi, unreadable_share
from selfheal.domain.logs.masking import clear_caches, mask
from selfheal.domain.logs.mining import WILDCARD, NumberSeries, Template, TemplateMiner
from selfheal.domain.logs.severity import SEVERITY_ORDER, Severity, is_crash_signature, severity

__all__ = [
    "SEVERITY_ORDER",
    "WILDCARD",
    "NumberSeries",
    "Severity",
    "Template",
    "TemplateMiner",
    "clear_caches",
    "is_crash_signature",
    "mask",
    "parse_events",
    "severity",
    "strip_ansi",
    "unreadable_share",
]
