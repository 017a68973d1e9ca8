"""The dialogue tests again (verified orders, pending requests, handoff, session ownership,
carried slots) with every store on PostgreSQL (`database_url`): the same behaviour, whichever
database holds the state."""

from __future__ import annotations

import pytest

from tests.test_dialogue import *  # noqa: F403 (its tests and fixtures, collected here again)


@pytest.fixture
def settings(settings, database_url):
    """The tests' settings, with the sessions, events, orders and catalog records in a new
    PostgreSQL database."""
    return settings.model_copy(update={"database_url": database_url})
