"""Property-based tests of the demo API: what a schema accepts gets a 200 of the documented shape,
what it refuses gets a 422 with one readable line, and nothing gets a 500.

Bodies are drawn near the valid ones (right keys, numbers around the limits, booleans, NaN,
strings, long lists) and as arbitrary JSON; each is sent as JSON text (Python's ``json.dumps``
writes NaN and Infinity as the bare words some clients send), and the expected status is decided
by the pydantic schema itself, as FastAPI applies it to the parsed body.
"""

from __future__ import annotations

import json
import math

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from contrastkit.web.app import create_app
from contrastkit.web.schemas import (
    MAX_NEGATIVES,
    ClipPromptRequest,
    ClipStepRequest,
    LandscapeRequest,
    PairRequest,
)

SETTINGS = settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)

json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
any_json = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)
numbers = (
    st.floats(min_value=-12, max_value=12)
    | st.integers(min_value=-12, max_value=12)
    | st.sampled_from([math.nan, math.inf, -math.inf, 0.0, 1e-4, 10.0, 10.5, True, False])
)
points = st.lists(numbers, min_size=1, max_size=3) | any_json
coordinates = st.floats(min_value=-10, max_value=10)
valid_point = st.tuples(coordinates, coordinates).map(list)
valid_landscape = st.fixed_dictionaries(
    {
        "anchor": valid_point,
        "positive": valid_point,
        "negatives": st.lists(valid_point, min_size=1, max_size=8),
    },
    optional={"temperature": st.floats(min_value=0.05, max_value=1.0)},
)
negatives = st.lists(st.tuples(numbers, numbers).map(list), min_size=0, max_size=4) | st.lists(
    st.just([0.5, 0.5]), min_size=MAX_NEGATIVES - 2, max_size=MAX_NEGATIVES + 3
)


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    app = create_app(tmp_path_factory.mktemp("cache"), train_encoder=False, max_sessions=4)
    with TestClient(app) as test_client:
        yield test_client


def accepted(schema, body) -> bool:
    try:
        schema.model_validate(body)
    except ValidationError:
        event(f"{schema.__name__} refuses")  # --hypothesis-show-statistics shows the mix
        return False
    event(f"{schema.__name__} accepts")
    return True


def post(client, path: str, body):
    text = json.dumps(body, allow_nan=True)
    response = client.post(path, content=text, headers={"Content-Type": "application/json"})
    assert response.status_code != 500, (body, response.text)
    return response, json.loads(text)


def assert_refused(response) -> None:
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str) and detail and "\n" not in detail


def finite(values) -> bool:
    return all(math.isfinite(v) for v in values)


def optional(keys: dict):
    """Dicts holding any subset of ``keys`` (each drawn from its strategy), maybe one extra."""
    return st.fixed_dictionaries({}, optional={**keys, "extra": any_json})


@SETTINGS
@given(
    body=optional(
        {
            "anchor": points,
            "positive": points,
            "negatives": negatives,
            "temperature": numbers,
        }
    )
    | valid_landscape
    | any_json
)
def test_landscape_accepts_exactly_what_its_schema_accepts(client, body):
    response, parsed = post(client, "/api/landscape", body)
    if not accepted(LandscapeRequest, parsed):
        assert_refused(response)
        return
    assert response.status_code == 200, (body, response.text)
    result = response.json()
    k = len(parsed["negatives"])
    assert result["bound"] == pytest.approx(math.log(k + 1))
    assert result["loss"] >= 0 and math.isfinite(result["loss"])
    assert len(result["similarity"]["negatives"]) == k
    assert len(result["push"]["negatives"]) == k
    assert finite([*result["push"]["anchor"], *result["push"]["positive"]])
    assert all(len(g) == 2 and finite(g) for g in result["push"]["negatives"])


@settings(SETTINGS, max_examples=25)  # a pair takes 0.1-0.5 s: augmentations and an encoder
@given(
    body=optional(
        {
            "kind": st.sampled_from(["positive", "negative", "Positive", ""]) | any_json,
            "seed": st.integers(min_value=-5, max_value=2**31 + 5) | numbers | any_json,
        }
    )
    | st.fixed_dictionaries(
        {"kind": st.sampled_from(["positive", "negative"]), "seed": st.integers(0, 2**31 - 1)}
    )
    | any_json
)
def test_pairs_accept_exactly_what_their_schema_accepts(client, body):
    response, parsed = post(client, "/api/pairs/sample", body)
    if not accepted(PairRequest, parsed):
        assert_refused(response)
        return
    assert response.status_code == 200, response.text
    pair = response.json()
    assert pair["kind"] == parsed["kind"] and len(pair["views"]) == 2
    for key in ("similarity", "similarity_z"):
        assert -1 - 1e-6 <= pair[key]["untrained"] <= 1 + 1e-6
        assert pair[key]["trained"] is None  # this server has no trained encoder


@pytest.fixture(scope="module")
def session(client) -> str:
    return client.post("/api/clip/session", json={"seed": 0}).json()["session_id"]


# valid step counts are drawn small: a CPU step of the mini-CLIP takes up to a second on a
# busy machine; MAX_CLIP_STEPS itself is accepted in test_api.py's range checks
@settings(SETTINGS, max_examples=30)
@given(
    body=optional(
        {
            "steps": st.integers(min_value=-3, max_value=1)
            | st.integers(201, 10**6)
            | numbers
            | any_json
        }
    )
    | any_json
)
def test_clip_step_accepts_exactly_what_its_schema_accepts(client, session, body):
    if accepted(ClipStepRequest, body) and "steps" not in body:
        body = {**body, "steps": 1}  # the default of 10 steps is slow here; see above
    response, parsed = post(client, f"/api/clip/{session}/step", body)
    if not accepted(ClipStepRequest, parsed):
        assert_refused(response)
        return
    assert response.status_code == 200, response.text
    state = response.json()
    assert state["epoch"] >= parsed["steps"]
    assert len(state["heldout"]["image_xy"]) == state["heldout"]["count"]


@SETTINGS
@given(body=optional({"text": st.text(max_size=220) | st.just("x" * 201) | any_json}) | any_json)
def test_clip_prompt_accepts_exactly_what_its_schema_accepts(client, session, body):
    response, parsed = post(client, f"/api/clip/{session}/prompt", body)
    if not accepted(ClipPromptRequest, parsed):
        assert_refused(response)
        return
    assert response.status_code == 200, response.text
    answer = response.json()
    assert math.hypot(*answer["xy"]) == pytest.approx(1.0, abs=1e-5)
    assert len(answer["prompt_similarity"]) == 3 and 0 <= answer["nearest_prompt"] < 3
    assert isinstance(answer["unknown_words"], list)
