"""Fixtures of the web demo tests: one trained demo encoder per test session, shared by all."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

TRAIN_TIMEOUT_S = 1800  # generous for busy machines; the recipe takes well under a minute alone


@pytest.fixture(scope="session")
def demo_cache(tmp_path_factory) -> Path:
    """Return a cache folder holding the trained demo encoder, trained the way the server does."""
    from contrastkit.web.encoder_cache import DemoEncoders

    cache = tmp_path_factory.mktemp("contrastkit-cache")
    encoders = DemoEncoders(cache)
    encoders.start(train=True)
    deadline = time.monotonic() + TRAIN_TIMEOUT_S
    while encoders.status()["status"] == "training" and time.monotonic() < deadline:
        time.sleep(0.5)
    status = encoders.status()
    encoders.stop()
    assert status["status"] == "ready", status
    return cache
