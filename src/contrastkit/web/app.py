"""The demo's web application: a FastAPI app serving the page and one JSON API per panel.

``create_app()`` builds it; ``contrastkit demo`` serves it with uvicorn. The page (``static/``)
only draws: every loss, gradient, similarity and training step is computed here by contrastkit.

Endpoints:
    GET  /                          the page
    GET  /api/health                liveness, and whether the panels have loaded
    GET  /api/pairs/status          state of the trained encoder of panel 1
    POST /api/pairs/sample          two augmented views and their cosine similarity per encoder
    GET  /api/pairs/averages        mean similarity of sampled positive and negative pairs
    POST /api/landscape             InfoNCE loss and the push on every point (panel 2)
    POST /api/clip/session          start a mini-CLIP session (panel 3)
    GET  /api/clip/{sid}            its state
    POST /api/clip/{sid}/step       train it for a few steps
    POST /api/clip/{sid}/prompt     where a typed prompt lands, and its similarity to the images
    POST /api/clip/{sid}/reset      start it over
    DELETE /api/clip/{sid}          forget it

Every request body is capped at ``limits.MAX_BODY_BYTES`` (413) and must arrive within
``limits.BODY_TIMEOUT_S`` (408); see ``limits.py``.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Callable
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from contrastkit.web.limits import BODY_TIMEOUT_S, MAX_BODY_BYTES, BodyLimitMiddleware
from contrastkit.web.panels import Panels
from contrastkit.web.schemas import (
    ClipPromptRequest,
    ClipSessionRequest,
    ClipStepRequest,
    LandscapeRequest,
    PairRequest,
)

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
SESSION_ID = r"^[A-Za-z0-9_-]{8,64}$"
PANELS_TIMEOUT_S = 300.0  # an endpoint waits this long for the panels to load


def _readable(errors: list[dict]) -> str:
    """Turn pydantic's error list into one line such as ``negatives.2.0: Input should be ...``."""
    parts = []
    for error in errors:
        if error.get("type") == "json_invalid":
            reason = (error.get("ctx") or {}).get("error", "")
            parts.append(f"body is not valid JSON ({reason} at character {error['loc'][-1]})")
            continue
        where = ".".join(_location(p) for p in error.get("loc", ()) if p != "body") or "body"
        parts.append(f"{where}: {error.get('msg', 'invalid value')}")
    return "; ".join(parts)


def _location(part: str | int) -> str:
    """A part of an error's location, quoted when it is not a plain name (a key such as "\\n")."""
    if isinstance(part, int) or re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,63}", part):
        return str(part)
    return repr(part[:40])


def create_app(
    cache_dir: Path | str | None = None,
    *,
    train_encoder: bool = True,
    max_sessions: int = 64,
    max_body_bytes: int = MAX_BODY_BYTES,
    body_timeout_s: float = BODY_TIMEOUT_S,
) -> FastAPI:
    """Build the demo application.

    Args:
        cache_dir: where the trained encoder of panel 1 is cached; default
            ``$CONTRASTKIT_CACHE``, else ``$XDG_CACHE_HOME/contrastkit`` or
            ``~/.cache/contrastkit``.
        train_encoder: train the encoder in the background when it is not cached; when False,
            only a cached encoder is used (the panel then says it is unavailable).
        max_sessions: live mini-CLIP sessions; the least recently used is evicted beyond.
        max_body_bytes: the largest request body (413 beyond).
        body_timeout_s: seconds within which a request body must arrive (408 beyond).

    Returns:
        The FastAPI app; its lifespan loads the encoder or starts its training.
    """
    panels = Panels(Path(cache_dir) if cache_dir else None, train_encoder, max_sessions)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        panels.start()
        yield
        panels.stop()

    app = FastAPI(title="contrastkit demo", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.panels = panels
    app.add_middleware(BodyLimitMiddleware, max_bytes=max_body_bytes, timeout_s=body_timeout_s)

    def ready() -> Panels:
        try:
            return panels.wait(timeout=PANELS_TIMEOUT_S)
        except RuntimeError as err:
            raise HTTPException(status_code=503, detail=str(err)) from None

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": _readable(exc.errors())})

    _add_page_routes(app, panels)
    _add_pair_routes(app, ready)
    _add_landscape_route(app, ready)
    _add_clip_routes(app, ready)
    return app


def _add_page_routes(app: FastAPI, panels: Panels) -> None:
    """The page, its static files and the liveness check (which must not wait for the panels)."""
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/api/health")
    def health() -> dict:
        return {"status": "ok", "panels": "ready" if panels.loaded else "loading"}


def _add_pair_routes(app: FastAPI, ready: Callable[[], Panels]) -> None:
    """Panel 1: augmentation pairs seen by an untrained and a trained encoder."""

    @app.get("/api/pairs/status")
    def pairs_status() -> dict:
        p = ready()
        return {**p.encoders.status(), "images": p.sampler.image_names}

    @app.post("/api/pairs/sample")
    def pairs_sample(body: PairRequest) -> dict:
        return ready().sampler.sample(body.kind, body.seed)

    @app.get("/api/pairs/averages")
    def pairs_averages() -> dict:
        return ready().sampler.averages()


def _add_landscape_route(app: FastAPI, ready: Callable[[], Panels]) -> None:
    """Panel 2: the InfoNCE loss landscape and its gradients."""

    @app.post("/api/landscape")
    def landscape_endpoint(body: LandscapeRequest) -> dict:
        try:
            return ready().landscape(body.anchor, body.positive, body.negatives, body.temperature)
        except ValueError as err:
            raise HTTPException(status_code=422, detail=str(err)) from None


def _add_clip_routes(app: FastAPI, ready: Callable[[], Panels]) -> None:
    """Panel 3: mini-CLIP sessions, each a tiny CLIP trained step by step from the page."""

    def session_call(method: str, session_id: str, *args) -> dict:
        if not _valid_session_id(session_id):
            raise HTTPException(status_code=404, detail=f"malformed session id {session_id!r}")
        sessions = ready().sessions
        from contrastkit.web.mini_clip import SessionNotFoundError  # loaded by ready()

        try:
            return getattr(sessions, method)(session_id, *args)
        except SessionNotFoundError:
            raise HTTPException(
                status_code=404,
                detail="unknown or expired mini-CLIP session; start a new one with "
                "POST /api/clip/session",
            ) from None

    @app.post("/api/clip/session")
    def clip_create(body: ClipSessionRequest | None = None) -> dict:
        seed = body.seed if body and body.seed is not None else secrets.randbelow(2**31)
        session_id, state = ready().sessions.create(seed)
        return {"session_id": session_id, "seed": seed, "state": state}

    @app.get("/api/clip/{session_id}")
    def clip_state(session_id: str) -> dict:
        return session_call("state", session_id)

    @app.post("/api/clip/{session_id}/step")
    def clip_step(session_id: str, body: ClipStepRequest) -> dict:
        return session_call("step", session_id, body.steps)

    @app.post("/api/clip/{session_id}/prompt")
    def clip_prompt(session_id: str, body: ClipPromptRequest) -> dict:
        return session_call("prompt", session_id, body.text)

    @app.post("/api/clip/{session_id}/reset")
    def clip_reset(session_id: str) -> dict:
        return session_call("reset", session_id)

    @app.delete("/api/clip/{session_id}")
    def clip_close(session_id: str) -> dict:
        if _valid_session_id(session_id):
            ready().sessions.close(session_id)
        return {"closed": session_id}


def _valid_session_id(session_id: str) -> bool:
    return re.fullmatch(SESSION_ID, session_id) is not None
