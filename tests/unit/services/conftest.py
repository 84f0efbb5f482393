"""Fixtures of the services' unit tests: a fresh in-memory world per test."""

from __future__ import annotations

import pytest

from tests.unit.services.world import World, make_world


@pytest.fixture
def world() -> World:
    return make_world()
