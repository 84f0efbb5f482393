"""One issue per failure: its markers are read from the first line only, its list of affected Rollouts is edited
line by line (no comment), and it is done when every Rollout it lists verified the fix."""

from __future__ import annotations

import pytest

from selfheal.domain.shared_issue import (
    AFFECTED_BEGIN,
    Affected,
    affected,
    all_verified,
    comment_marker,
    created_by,
    first_line,
    parse_fingerprint,
    parse_signature,
    posted,
    ticket_marker,
    with_affected,
)

FP, SIG = "aa" * 16, "bb" * 16
BODY = f"{first_line(FP, SIG, 'shop/web-6c8d')}\n\nThe canary failed.\n\n## What failed\n\n```text\nlogs\n```"
WEB = Affected("shop/web-6c8d", "shop/web", "3", "6c8d", "IssueOpened")
EU = Affected("eu/web-6c8d", "eu/web", "5", "6c8d", "IssueOpened")


def test_markers_are_read_from_the_first_line_only() -> None:
    assert (parse_fingerprint(BODY), parse_signature(BODY), created_by(BODY)) == (FP, SIG, "shop/web-6c8d")
    spoofed = "no markers here\n\n```\n" + first_line("cc" * 16, "dd" * 16, "evil/x") + "\n```"
    assert (parse_fingerprint(spoofed), parse_signature(spoofed), created_by(spoofed)) == (None, None, None)
    with pytest.raises(ValueError):
        ticket_marker("not a ticket name")


def test_a_joining_rollout_adds_its_line_and_a_phase_change_edits_it() -> None:
    body = with_affected(BODY, WEB)
    assert affected(body) == [WEB]
    assert body.index(AFFECTED_BEGIN) < body.index("## What failed")  # above every log text
    assert with_affected(body, WEB) == body  # already so: nothing to send
    body = with_affected(body, EU)
    assert affected(body) == [WEB, EU]
    resolved = Affected(WEB.ticket, WEB.rollout, WEB.revision, WEB.pod_hash, "Resolved", "4")
    body = with_affected(body, resolved)
    assert affected(body) == [resolved, EU]  # its own line, in place
    assert body.count(AFFECTED_BEGIN) == 1 and "fixed in revision `4`" in body
    assert "The canary failed." in body and "```text\nlogs\n```" in body


def test_the_issue_is_done_when_every_listed_rollout_verified() -> None:
    done = Affected(WEB.ticket, WEB.rollout, "3", "6c8d", "Resolved", "4")
    assert not all_verified([])
    assert not all_verified([done, EU])
    assert all_verified([done, Affected(EU.ticket, EU.rollout, "5", "6c8d", "Resolved", "6")])


def test_a_comment_is_recognised_by_its_marker() -> None:
    marker = comment_marker("verified", "issue-1 shop/web@4")
    assert posted(["first", f"done\n\n{marker}"], marker)
    assert not posted(["first", None], marker)
