"""Request bodies of the demo's JSON API, validated by pydantic before any computation.

Coordinates are finite and within ``[-COORD_LIMIT, COORD_LIMIT]``, point lists are short and the
temperature stays in the slider's range, so one request can never make the server slow or crash.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

COORD_LIMIT = 10.0
MAX_NEGATIVES = 256
MIN_TEMPERATURE, MAX_TEMPERATURE = 0.05, 1.0
MAX_SEED = 2**31 - 1
MAX_CLIP_STEPS = 200

Coordinate = Annotated[float, Field(ge=-COORD_LIMIT, le=COORD_LIMIT, allow_inf_nan=False)]
Point = tuple[Coordinate, Coordinate]
Seed = Annotated[int, Field(ge=0, le=MAX_SEED)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LandscapeRequest(_Strict):
    """Panel 2: one anchor, its positive, K negatives and the temperature."""

    anchor: Point
    positive: Point
    negatives: list[Point] = Field(min_length=1, max_length=MAX_NEGATIVES)
    temperature: float = Field(
        default=0.5, ge=MIN_TEMPERATURE, le=MAX_TEMPERATURE, allow_inf_nan=False
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

    steps: int = Field(default=10, ge=1, le=MAX_CLIP_STEPS)
