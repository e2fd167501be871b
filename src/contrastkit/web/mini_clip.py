"""Panel 3: one tiny 2-D CLIP (``contrastkit.web.clip2d.Clip2D``) per browser session.

Every session trains its own model, so concurrent users never share state. At most
``max_sessions`` live at once; creating one more evicts the least recently used, whose id then
answers "unknown or expired session" so the page can start a new one.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable

from contrastkit.web.clip2d import IMAGE_SIZE, Clip2D
from contrastkit.web.png import png_data_url
from contrastkit.web.schemas import MAX_CLIP_STEPS as MAX_STEPS_PER_CALL

log = logging.getLogger(__name__)


class SessionNotFoundError(KeyError):
    """The session id is unknown or its session was evicted."""


class _Session:
    def __init__(self, model: Clip2D) -> None:
        self.model = model
        self.lock = threading.Lock()  # one request at a time per model


class ClipSessions:
    """A bounded, thread-safe store of Clip2D models keyed by random session ids.

    Args:
        max_sessions: how many sessions live at once; the least recently used is evicted beyond.
        factory: builds a model from a seed (default ``Clip2D(seed=seed)``).
    """

    def __init__(
        self, max_sessions: int = 64, factory: Callable[[int], Clip2D] | None = None
    ) -> None:
        if max_sessions < 1:
            raise ValueError(f"max_sessions must be >= 1, got {max_sessions}")
        self.max_sessions = max_sessions
        self._factory = factory or (lambda seed: Clip2D(seed=seed))
        self._sessions: OrderedDict[str, _Session] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._sessions)

    def create(self, seed: int) -> tuple[str, dict]:
        """Start a new session; return its id and the model's initial state.

        The state also holds ``"thumbnails"``: the N images as PNG data URLs, in order, and
        ``"heldout_thumbnails"``: the M held-out images likewise.
        """
        session = _Session(self._factory(seed))
        session_id = secrets.token_urlsafe(16)
        with self._lock:
            while len(self._sessions) >= self.max_sessions:
                evicted, _ = self._sessions.popitem(last=False)
                log.info("mini-CLIP: evicted session %s (cap %d)", evicted[:6], self.max_sessions)
            self._sessions[session_id] = session
        with session.lock:
            state = session.model.state()
            images = session.model.images.reshape(-1, 3, IMAGE_SIZE, IMAGE_SIZE)
            heldout = session.model.heldout_images.reshape(-1, 3, IMAGE_SIZE, IMAGE_SIZE)
        state["thumbnails"] = [png_data_url(image) for image in images]
        state["heldout_thumbnails"] = [png_data_url(image) for image in heldout]
        return session_id, state

    def _get(self, session_id: str) -> _Session:
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None:
                raise SessionNotFoundError(session_id)
            self._sessions.move_to_end(session_id)
            return session

    def state(self, session_id: str) -> dict:
        """Return the current state of a session's model."""
        session = self._get(session_id)
        with session.lock:
            return session.model.state()

    def step(self, session_id: str, steps: int) -> dict:
        """Run ``steps`` contrastive training steps (1..MAX_STEPS_PER_CALL); return the state."""
        if not 1 <= steps <= MAX_STEPS_PER_CALL:
            raise ValueError(f"steps must be in [1, {MAX_STEPS_PER_CALL}], got {steps}")
        session = self._get(session_id)
        with session.lock:
            return session.model.step(steps)

    def prompt(self, session_id: str, text: str) -> dict:
        """Embed a typed prompt with the session's current text tower (``Clip2D.embed_prompt``)."""
        session = self._get(session_id)
        with session.lock:
            return session.model.embed_prompt(text)

    def reset(self, session_id: str) -> dict:
        """Scatter the session's points at random again and forget training; return the state."""
        session = self._get(session_id)
        with session.lock:
            session.model.reset()
            return session.model.state()

    def close(self, session_id: str) -> None:
        """Forget a session (unknown ids are ignored)."""
        with self._lock:
            self._sessions.pop(session_id, None)
