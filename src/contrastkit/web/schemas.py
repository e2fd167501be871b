"""Request bodies of the demo's JSON API, validated by pydantic before any computation.

Coordinates are finite JSON numbers (never booleans or strings) within
``[-COORD_LIMIT, COORD_LIMIT]`` and away from the origin, point lists are short, the temperature
stays in the slider's range and prompts are short, so one request can never make the server slow
or crash: what a schema accepts gets a 200, what it refuses a 422. The request body as a whole is
capped by ``limits.BodyLimitMiddleware`` before it is parsed.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

COORD_LIMIT = 10.0
MIN_NORM = 1e-3  # a point this close to the origin has no direction, so no cosine similarity
MAX_NEGATIVES = 256
MIN_TEMPERATURE, MAX_TEMPERATURE = 0.05, 1.0
MAX_SEED = 2**31 - 1
MAX_CLIP_STEPS = 200
MAX_PROMPT_CHARS = 200
_PROMPT_WORD = re.compile(r"[a-z0-9]", re.IGNORECASE)  # the tokenizer's words are [a-z0-9]+


def _has_direction(point: tuple[float, float]) -> tuple[float, float]:
    if math.hypot(*point) < MIN_NORM:
        raise ValueError(
            f"point {list(point)} is too close to the origin (norm < {MIN_NORM}); "
            "cosine similarity needs a direction"
        )
    return point


def _has_a_word(text: str) -> str:
    if not _PROMPT_WORD.search(text):
        raise ValueError("a prompt needs at least one word of letters a-z or digits")
    return text


Coordinate = Annotated[
    float, Field(strict=True, ge=-COORD_LIMIT, le=COORD_LIMIT, allow_inf_nan=False)
]
Point = Annotated[tuple[Coordinate, Coordinate], AfterValidator(_has_direction)]
Seed = Annotated[int, Field(strict=True, ge=0, le=MAX_SEED)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LandscapeRequest(_Strict):
    """Panel 2: one anchor, its positive, K negatives and the temperature.

    Points may lie anywhere in the square (off the unit circle too): the loss uses their
    directions only.
    """

    anchor: Point
    positive: Point
    negatives: list[Point] = Field(min_length=1, max_length=MAX_NEGATIVES)
    temperature: float = Field(
        default=0.5, ge=MIN_TEMPERATURE, le=MAX_TEMPERATURE, allow_inf_nan=False, strict=True
    )


class PairRequest(_Strict):
    """Panel 1: a positive pair (two views of one image) or a negative pair (two images)."""

    kind: Literal["positive", "negative"]
    seed: Seed = 0


class ClipSessionRequest(_Strict):
    """Panel 3: start a mini-CLIP session; the seed scatters the points."""

    seed: Seed | None = None


class ClipStepRequest(_Strict):
    """Panel 3: how many contrastive steps to run before answering."""

    steps: int = Field(default=10, ge=1, le=MAX_CLIP_STEPS, strict=True)


class ClipPromptRequest(_Strict):
    """Panel 3: a prompt the reader typed, to embed with the session's text tower."""

    text: Annotated[
        str,
        Field(min_length=1, max_length=MAX_PROMPT_CHARS, strict=True),
        AfterValidator(_has_a_word),
    ]
