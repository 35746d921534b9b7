"""The recommender's clock, moved on by a test instead of waited for."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from recommend import service


@pytest.fixture
def later(monkeypatch: pytest.MonkeyPatch) -> Callable[[float], None]:
    """`later(seconds)`: from then on the recommender's process sees its clock that much on."""
    offset = [0.0]
    real = service.monotonic
    monkeypatch.setattr(service, "monotonic", lambda: real() + offset[0])

    def move(seconds: float) -> None:
        offset[0] += seconds

    return move
