"""One GitHub issue per failure, shared by every Rollout it affects: its hidden markers, its list of affected
Rollouts, the comments posted once each, and when it is done.

The first line of an issue body carries the failure's markers (``fingerprint``: the failure exactly;
``signature``: its primary signature, which the search matches) and the marker of the ticket that wrote it.
Right below the introduction, between two markers, a list names each affected Rollout with its ticket and
that ticket's phase: a ticket joining the issue, or changing phase, edits its own line (no comment). The
list sits above any log text, so a marker copied into a log example further down is never read as ours.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

_HEX = re.compile(r"[0-9a-f]{6,128}")
_FINGERPRINT = re.compile(r"<!-- selfheal:fingerprint=([0-9a-f]{6,128}) -->")
_SIGNATURE = re.compile(r"<!-- selfheal:signature=([0-9a-f]{6,128}) -->")
_TICKET = re.compile(r"<!-- selfheal:ticket=([a-z0-9.-]+/[a-z0-9.-]+) -->")
_NAME = re.compile(r"^[a-z0-9.-]+/[a-z0-9.-]+$")
AFFECTED_BEGIN = "<!-- selfheal:affected -->"
AFFECTED_END = "<!-- /selfheal:affected -->"
_ROW = re.compile(
    r"<!-- selfheal:row ticket=(?P<ticket>[a-z0-9.-]+/[a-z0-9.-]+) rollout=(?P<rollout>[a-z0-9.-]+/[a-z0-9.-]+) "
    r"revision=(?P<revision>[^ ]*) hash=(?P<hash>[a-z0-9]*) phase=(?P<phase>[A-Za-z]*)"
    r"(?: verified=(?P<verified>[^ ]*))? -->"
)
# The ticket phase that means "fixed and verified here".
VERIFIED = "Resolved"


# --- the failure's markers ---------------------------------------------------------------------------


def _hex(value: str, what: str) -> str:
    if not _HEX.fullmatch(value):
        raise ValueError(f"{what} must be 6 to 128 lowercase hex digits, got {value!r}")
    return value


def fingerprint_marker(fingerprint: str) -> str:
    """The hidden HTML comment that names the failure exactly (its full fingerprint, lowercase hex)."""
    return f"<!-- selfheal:fingerprint={_hex(fingerprint, 'fingerprint')} -->"


def signature_marker(signature: str) -> str:
    """The hidden HTML comment that names the failure's primary signature: what the issue search matches."""
    return f"<!-- selfheal:signature={_hex(signature, 'signature')} -->"


def ticket_marker(ticket: str) -> str:
    """The hidden marker of the ticket (``namespace/name``) that created an issue."""
    if not _NAME.fullmatch(ticket):
        raise ValueError(f"a ticket is named namespace/name, got {ticket!r}")
    return f"<!-- selfheal:ticket={ticket} -->"


def _token(text: str) -> str:
    """A value as one token of a marker: no spaces, no comment end."""
    return "".join(text.split()).replace("-->", "")[:63] or "?"


def _first_line(body: str | None) -> str:
    return (body or "").split("\n", 1)[0]


def parse_fingerprint(body: str | None) -> str | None:
    """The fingerprint of the marker on the body's first line (where selfheal writes it; a marker further
    down, copied into a log example, is never taken)."""
    match = _FINGERPRINT.search(_first_line(body))
    return match.group(1) if match else None


def parse_signature(body: str | None) -> str | None:
    """The primary signature of the marker on the body's first line."""
    match = _SIGNATURE.search(_first_line(body))
    return match.group(1) if match else None


def created_by(body: str | None) -> str | None:
    """The ticket (``namespace/name``) whose marker is on the body's first line."""
    match = _TICKET.search(_first_line(body))
    return match.group(1) if match else None


def first_line(fingerprint: str, signature: str, ticket: str) -> str:
    """The markers an issue body starts with."""
    parts = [fingerprint_marker(fingerprint)]
    if signature:
        parts.append(signature_marker(signature))
    parts.append(ticket_marker(ticket))
    return " ".join(parts)


# --- the affected Rollouts ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Affected:
    """One Rollout the failure affects: its ticket (``namespace/name``) and where that ticket stands."""

    ticket: str
    rollout: str
    revision: str = ""
    pod_hash: str = ""
    phase: str = ""
    # The revision that verified the fix here, once it did.
    verified_revision: str = ""

    @property
    def verified(self) -> bool:
        return self.phase == VERIFIED

    def line(self) -> str:
        revision = self.revision or "?"
        done = f" (fixed in revision `{self.verified_revision}`)" if self.verified_revision else ""
        visible = (
            f"- `{self.rollout}`: revision `{revision}` (`{self.pod_hash or '?'}`), "
            f"ticket `{self.ticket.split('/', 1)[1]}`: **{self.phase or 'Open'}**{done}"
        )
        verified = f" verified={_token(self.verified_revision)}" if self.verified_revision else ""
        marker = (
            f"<!-- selfheal:row ticket={self.ticket} rollout={self.rollout} revision={_token(revision)} "
            f"hash={self.pod_hash} phase={self.phase}{verified} -->"
        )
        return f"{visible} {marker}"


def affected(body: str | None) -> list[Affected]:
    """The affected Rollouts the issue lists, in the order they joined."""
    text = body or ""
    start = text.find(AFFECTED_BEGIN)
    if start < 0:
        return []
    end = text.find(AFFECTED_END, start)
    section = text[start : end if end >= 0 else len(text)]
    rows = []
    for m in _ROW.finditer(section):
        revision = m.group("revision")
        rows.append(
            Affected(
                ticket=m.group("ticket"),
                rollout=m.group("rollout"),
                revision="" if revision == "?" else revision,
                pod_hash=m.group("hash"),
                phase=m.group("phase"),
                verified_revision=m.group("verified") or "",
            )
        )
    return rows


def render_affected(rows: Iterable[Affected]) -> str:
    lines = [AFFECTED_BEGIN, "**Affected Rollouts** (each with its own ticket; kept current by selfheal):", ""]
    lines += [row.line() for row in rows]
    return "\n".join([*lines, AFFECTED_END])


def with_affected(body: str, row: Affected) -> str:
    """The body with ``row`` listed (added, or replacing the line of the same ticket); unchanged when it is
    already so. A body without the list gets one after its first paragraph."""
    rows = affected(body)
    if row in rows:
        return body
    others = [r for r in rows if r.ticket != row.ticket]
    position = next((i for i, r in enumerate(rows) if r.ticket == row.ticket), len(others))
    section = render_affected([*others[:position], row, *others[position:]])
    start = body.find(AFFECTED_BEGIN)
    if start >= 0:
        end = body.find(AFFECTED_END, start)
        stop = end + len(AFFECTED_END) if end >= 0 else len(body)
        return body[:start] + section + body[stop:]
    head, sep, rest = body.partition("\n\n")
    paragraph, sep2, tail = rest.partition("\n\n")
    if not sep2:
        return f"{body}\n\n{section}"
    return f"{head}{sep}{paragraph}\n\n{section}\n\n{tail}"


def all_verified(rows: Iterable[Affected]) -> bool:
    """The issue is done when every Rollout it lists verified the fix (a shared issue closes only then)."""
    listed = list(rows)
    return bool(listed) and all(r.verified for r in listed)


# --- comments posted once -----------------------------------------------------------------------------


def comment_marker(kind: str, key: str) -> str:
    """The hidden marker of a comment of ``kind`` about ``key``: a comment whose marker is on the issue was
    posted already (before a restart, or by another ticket) and is not posted again."""
    return f"<!-- selfheal:{kind} {key} -->"


def posted(comments: Iterable[str | None], marker: str) -> bool:
    return any(marker in (body or "") for body in comments)
