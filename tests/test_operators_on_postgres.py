"""The operator tests again (handoff inbox, metrics, turn review and the training set built
from the log) with every store on PostgreSQL (`database_url`)."""

from __future__ import annotations

import pytest

from tests.test_admin import *  # noqa: F403 (its tests and fixtures, collected here again)
from tests.test_review import *  # noqa: F403


@pytest.fixture
def settings(settings, database_url):
    """The tests' settings, with the sessions, events, orders and catalog records in a new
    PostgreSQL database."""
    return settings.model_copy(update={"database_url": database_url})
