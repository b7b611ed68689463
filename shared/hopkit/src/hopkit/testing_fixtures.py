"""pytest fixtures for the real servers of :mod:`hopkit.testing`, session-scoped.

A conftest imports the ones its tests stand on, so that a reader sees them there
(each conftest that does gets servers of its own)::

    from hopkit.testing_fixtures import kafka as kafka
    from hopkit.testing_fixtures import valkey as valkey

pytest finds a fixture by its name in the conftest's namespace, so the import is
the registration (``x as x`` tells linters it is meant). Kept apart from
:mod:`hopkit.testing`, which does not need pytest.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .events import ALL_TOPICS
from .testing import KafkaBroker, ValkeyServer

__all__ = ["kafka", "valkey"]


@pytest.fixture(scope="session")
def valkey(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ValkeyServer]:
    """A real valkey-server (the Redis protocol) on a free loopback port."""
    with ValkeyServer(tmp_path_factory.mktemp("valkey")) as server:
        yield server


@pytest.fixture(scope="session")
def kafka() -> Iterator[KafkaBroker]:
    """A real Kafka-protocol broker with every hopshop topic and its dead-letter topic."""
    with KafkaBroker() as broker:
        broker.create_topics(ALL_TOPICS)
        yield broker
