from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.notify.fake_discord import FakeDiscord


@pytest.fixture
def discord() -> Iterator[FakeDiscord]:
    fake = FakeDiscord().start()
    try:
        yield fake
    finally:
        fake.stop()
