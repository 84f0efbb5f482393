"""The one error taxonomy of selfheal; adapters translate outside failures into these."""

from __future__ import annotations


class SelfHealError(Exception):
    """Base of every error selfheal raises on purpose."""


class ConfigError(SelfHealError):
    """The user's configuration is wrong (bad policy, missing Secret or key). Not retried."""


class TransientError(SelfHealError):
    """A dependency failed in a way that may pass; retry after ``delay`` seconds."""

    def __init__(self, message: str, *, delay: float = 10.0) -> None:
        super().__init__(message)
        self.delay = delay


class RateLimitedError(TransientError):
    """A dependency asked us to slow down; ``delay`` is what it asked for."""


class PermanentError(SelfHealError):
    """A dependency refused the request for good (401, 404, 422...). Not retried."""


class Conflict(SelfHealError):
    """The apiserver refused a write (409): the object changed since it was read, or already exists."""


class AnalyzerUnavailable(SelfHealError):
    """The LLM/agent could not give a valid verdict (down, slow, malformed output)."""


class Refused(SelfHealError):
    """A question selfheal will not answer (the object is unknown, not governed, or not the one asked about);
    ``status`` is the HTTP status that says why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
