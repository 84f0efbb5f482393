"""Who may hold the Lease: taken when free or expired, renewed by its holder, never taken while live."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from selfheal.domain.lease import LeaseRecord, claim, release

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_a_missing_lease_is_created_for_the_candidate() -> None:
    assert claim(None, "a", 15, T0, expired=False) == LeaseRecord("a", 15, T0, T0, 0)


def test_the_holder_renews_keeping_its_acquisition_time() -> None:
    held = LeaseRecord("a", 15, T0, T0, 2)
    later = T0 + timedelta(seconds=2)
    assert claim(held, "a", 15, later, expired=True) == LeaseRecord("a", 15, T0, later, 2)


def test_a_live_lease_of_another_is_never_taken() -> None:
    assert claim(LeaseRecord("a", 15, T0, T0, 0), "b", 15, T0 + timedelta(hours=1), expired=False) is None


def test_an_expired_or_released_lease_is_taken_and_the_transition_counted() -> None:
    later = T0 + timedelta(seconds=20)
    assert claim(LeaseRecord("a", 15, T0, T0, 4), "b", 15, later, expired=True) == LeaseRecord("b", 15, later, later, 5)
    released = release(LeaseRecord("a", 15, T0, T0, 4), "a")
    assert released is not None and released.holder == ""
    assert claim(released, "b", 15, later, expired=False) == LeaseRecord("b", 15, later, later, 5)


def test_only_the_holder_releases() -> None:
    assert release(LeaseRecord("a", 15, T0, T0, 0), "b") is None
    assert release(None, "a") is None
