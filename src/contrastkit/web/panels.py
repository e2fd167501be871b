"""The library side of the demo's panels, imported in the background while the page is served.

Importing torch, torchvision and the rest of contrastkit takes seconds; the server answers (the
page, ``/api/health``) at once and the panels' endpoints wait until ``Panels`` has loaded them.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

log = logging.getLogger(__name__)


class Panels:
    """The state behind the three panels, created by ``load`` in a background thread.

    Args:
        cache_dir: the cache folder of the trained encoder (None: ``default_cache_dir()``).
        train_encoder: train the encoder in the background when it is not cached.
        max_sessions: live mini-CLIP sessions.

    Attributes (once loaded):
        encoders: ``encoder_cache.DemoEncoders``, sampler: ``augment_pairs.PairSampler``,
        sessions: ``mini_clip.ClipSessions``, landscape: ``landscape.landscape``.
    """

    def __init__(self, cache_dir: Path | None, train_encoder: bool, max_sessions: int) -> None:
        self.cache_dir = cache_dir
        self.train_encoder = train_encoder
        self.max_sessions = max_sessions
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def start(self) -> None:
        """Begin loading in a background thread."""
        threading.Thread(target=self._load, name="contrastkit-panels", daemon=True).start()

    def _load(self) -> None:
        try:
            from contrastkit.web.augment_pairs import PairSampler
            from contrastkit.web.encoder_cache import DemoEncoders, default_cache_dir
            from contrastkit.web.landscape import landscape
            from contrastkit.web.mini_clip import ClipSessions

            self.encoders = DemoEncoders(self.cache_dir or default_cache_dir())
            self.sampler = PairSampler(self.encoders)
            self.sessions = ClipSessions(max_sessions=self.max_sessions)
            self.landscape = landscape
            self.encoders.start(train=self.train_encoder)
        except Exception as err:  # reported by every endpoint that needs the panels
            log.exception("the demo panels failed to load")
            self._error = err
        finally:
            self._ready.set()

    @property
    def loaded(self) -> bool:
        """True once loading has finished (successfully or not)."""
        return self._ready.is_set()

    def wait(self, timeout: float | None = None) -> Panels:
        """Block until loaded; return self.

        Raises:
            RuntimeError: loading failed or did not finish within ``timeout`` seconds.
        """
        if not self._ready.wait(timeout):
            raise RuntimeError(f"the demo panels did not load within {timeout} s")
        if self._error is not None:
            raise RuntimeError(f"the demo panels failed to load: {self._error}") from self._error
        return self

    def stop(self) -> None:
        """Stop background work (a training encoder) once loading has finished."""
        self._ready.wait()
        if self._error is None:
            self.encoders.stop()
