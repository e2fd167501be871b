"""Where the demo encoder is cached, and what the server says before it exists."""

from __future__ import annotations

from pathlib import Path

import torch

from contrastkit.web.encoder_cache import DemoEncoders, default_cache_dir, recipe_key


def test_cache_folder_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("CONTRASTKIT_CACHE", str(tmp_path / "mine"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "mine"
    monkeypatch.delenv("CONTRASTKIT_CACHE")
    assert default_cache_dir() == tmp_path / "xdg" / "contrastkit"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == Path(tmp_path / "home" / ".cache" / "contrastkit")


def test_encoder_folder_is_keyed_by_the_recipe(tmp_path):
    encoders = DemoEncoders(tmp_path)
    assert encoders.work_dir == tmp_path / f"demo-encoder-{recipe_key()}"
    assert recipe_key() == recipe_key() and len(recipe_key()) == 12


def test_without_training_only_the_untrained_encoder_is_available(tmp_path):
    encoders = DemoEncoders(tmp_path)
    encoders.start(train=False)
    assert encoders.status()["status"] == "unavailable"
    available = encoders.available()
    assert set(available) == {"untrained"}
    h = available["untrained"](torch.rand(2, 3, 32, 32))
    assert h.shape[0] == 2 and h.ndim == 2
    assert not any(tmp_path.iterdir())  # nothing written when not training
