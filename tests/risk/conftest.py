"""Risk-area fixtures: the real encoder and the shipped weights, loaded once per session."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def embedded_assessor():
    from pearlpoint.risk import get_assessor

    return get_assessor("embedded")
