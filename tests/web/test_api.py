"""The demo's JSON API through FastAPI's test client: every endpoint, good and bad requests."""

from __future__ import annotations

import base64
import io
import math

import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image

from contrastkit.losses import info_nce
from contrastkit.web.app import STATIC, create_app


def unit(angle: float) -> list[float]:
    return [math.cos(angle), math.sin(angle)]


def landscape_body(**changes) -> dict:
    body = {
        "anchor": unit(0.0),
        "positive": unit(0.6),
        "negatives": [unit(1.2), unit(2.5), unit(3.5), unit(4.5)],
        "temperature": 0.5,
    }
    body.update(changes)
    return body


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    """A server with no trained encoder and no training (fast): panels 2 and 3, validation."""
    app = create_app(tmp_path_factory.mktemp("empty-cache"), train_encoder=False, max_sessions=3)
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def trained_client(demo_cache):
    """A server whose cache holds the trained encoder."""
    with TestClient(create_app(demo_cache)) as test_client:
        yield test_client


# ---------------------------------------------------------------- page and static files
def test_page_and_static_files_are_served_locally(client):
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert '"/static/app.js"' in page.text and '"/static/style.css"' in page.text
    for path in sorted(STATIC.iterdir()):
        response = client.get(f"/static/{path.name}")
        assert response.status_code == 200
        # nothing is loaded from the network: no absolute URL in src/href/url()/import
        for pattern in ('src="http', 'href="http', "url(http", "@import", "//cdn"):
            assert pattern not in response.text
    assert 'src="http' not in page.text and 'href="http' not in page.text
    assert client.get("/api/health").json()["status"] == "ok"


def test_unknown_route_is_404(client):
    assert client.get("/api/nothing-here").status_code == 404


# ---------------------------------------------------------------- panel 2: loss landscape
def test_landscape_loss_is_contrastkit_info_nce(client):
    body = landscape_body()
    result = client.post("/api/landscape", json=body).json()
    expected = info_nce(
        torch.tensor([body["anchor"]], dtype=torch.float64),
        torch.tensor([body["positive"]], dtype=torch.float64),
        torch.tensor(body["negatives"], dtype=torch.float64),
        temperature=body["temperature"],
    )
    assert result["loss"] == pytest.approx(float(expected), rel=1e-9)
    assert result["bound"] == pytest.approx(math.log(5))
    assert len(result["push"]["negatives"]) == 4
    assert len(result["similarity"]["negatives"]) == 4


def test_landscape_push_is_tangent_and_points_the_right_way(client):
    body = landscape_body()
    push = client.post("/api/landscape", json=body).json()["push"]
    points = [body["anchor"], body["positive"], *body["negatives"]]
    arrows = [push["anchor"], push["positive"], *push["negatives"]]
    for p, g in zip(points, arrows, strict=True):  # cosine only sees angles: no radial part
        assert abs(p[0] * g[0] + p[1] * g[1]) < 1e-9
    # the positive (at +0.6 rad) is pulled toward the anchor (at 0): clockwise
    cross = body["positive"][0] * push["positive"][1] - body["positive"][1] * push["positive"][0]
    assert cross < 0
    # the nearest negative (at +1.2 rad) is pushed away from the anchor: counter-clockwise
    n0, g0 = body["negatives"][0], push["negatives"][0]
    assert n0[0] * g0[1] - n0[1] * g0[0] > 0


def test_points_off_the_circle_count_by_their_direction_only(client):
    on_circle = landscape_body()
    off = landscape_body(
        anchor=[2.0 * v for v in on_circle["anchor"]],
        negatives=[[0.5 * v for v in n] for n in on_circle["negatives"]],
    )
    a, b = (client.post("/api/landscape", json=body).json() for body in (on_circle, off))
    assert b["loss"] == pytest.approx(a["loss"], rel=1e-9)
    assert b["similarity"]["negatives"] == pytest.approx(a["similarity"]["negatives"], rel=1e-9)
    # the true gradient of a point at radius r is the unit-circle one divided by r
    assert b["push"]["anchor"] == pytest.approx([g / 2 for g in a["push"]["anchor"]], rel=1e-9)
    for g_off, g_on in zip(b["push"]["negatives"], a["push"]["negatives"], strict=True):
        assert g_off == pytest.approx([2 * g for g in g_on], rel=1e-9)
    for p, g in zip(off["negatives"], b["push"]["negatives"], strict=True):
        assert abs(p[0] * g[0] + p[1] * g[1]) < 1e-9  # still perpendicular to the point


def test_booleans_and_strings_are_not_coordinates(client):
    for bad in ([True, False], ["1", "0"], [1, None]):
        response = client.post("/api/landscape", json=landscape_body(anchor=bad))
        assert response.status_code == 422 and "anchor" in response.json()["detail"], bad
    for steps in (True, 2.0):
        response = client.post("/api/clip/session", json={"seed": steps})
        assert response.status_code == 422


def test_landscape_loss_rises_as_a_negative_nears_the_anchor(client):
    losses = [
        client.post("/api/landscape", json=landscape_body(negatives=[unit(a), unit(3.0)])).json()[
            "loss"
        ]
        for a in (2.0, 1.0, 0.3)
    ]
    assert losses[0] < losses[1] < losses[2]


def test_low_temperature_makes_the_hardest_negative_dominate(client):
    def ratio(temperature: float) -> float:
        body = landscape_body(temperature=temperature)
        sizes = [
            math.hypot(*g)
            for g in client.post("/api/landscape", json=body).json()["push"]["negatives"]
        ]
        return sizes[0] / max(sizes[1:])  # negatives[0] is the closest to the anchor

    assert ratio(0.05) > 100 * ratio(1.0)
    assert ratio(0.05) > 1000


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"temperature": 0.01}, "temperature"),
        ({"temperature": 1.5}, "temperature"),
        ({"anchor": [11.0, 0.0]}, "anchor"),
        ({"positive": [0.0, -10.5]}, "positive"),
        ({"negatives": []}, "negatives"),
        ({"negatives": [unit(0.1 * i) for i in range(300)]}, "negatives"),
        ({"negatives": [[1.0, 2.0, 3.0]]}, "negatives"),
        ({"anchor": "left"}, "anchor"),
        ({"extra": 1}, "extra"),
        ({"anchor": [0.0, 0.0]}, "anchor"),  # no direction, no cosine similarity
    ],
)
def test_landscape_bad_requests_get_a_readable_422(client, changes, field):
    response = client.post("/api/landscape", json=landscape_body(**changes))
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert isinstance(detail, str) and field in detail
    assert client.get("/api/health").status_code == 200  # and the server keeps serving


def test_an_error_about_an_odd_key_stays_one_line(client):
    response = client.post("/api/landscape", json=landscape_body(**{"\n": 1}))
    assert response.status_code == 422
    assert "\n" not in response.json()["detail"] and "'\\n'" in response.json()["detail"]


def test_landscape_rejects_non_finite_numbers_and_broken_json(client):
    headers = {"Content-Type": "application/json"}
    for text in (
        '{"anchor": [NaN, 0], "positive": [0, 1], "negatives": [[1, 1]]}',
        '{"anchor": [Infinity, 0], "positive": [0, 1], "negatives": [[1, 1]]}',
        '{"anchor": [1, 0], "positive": [0, 1], "negatives": [[1, 1]], "temperature": NaN}',
        '{"anchor": [1, 0], "positive": ',
    ):
        response = client.post("/api/landscape", content=text, headers=headers)
        assert response.status_code == 422, text
        assert isinstance(response.json()["detail"], str)
    broken = client.post("/api/landscape", content='{"anchor": [1,', headers=headers)
    assert "not valid JSON" in broken.json()["detail"]
    missing = client.post("/api/landscape", json={"anchor": [1, 0]})
    assert missing.status_code == 422 and "positive" in missing.json()["detail"]


# ---------------------------------------------------------------- panel 1: augmentation pairs
def decode_png(url: str) -> Image.Image:
    assert url.startswith("data:image/png;base64,")
    return Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))


def test_pairs_without_a_trained_encoder_say_so(client):
    status = client.get("/api/pairs/status").json()
    assert status["status"] == "unavailable" and "not trained" in status["message"]
    assert {"coffee cup", "cat", "astronaut", "rocket"} <= set(status["images"])
    pair = client.post("/api/pairs/sample", json={"kind": "positive", "seed": 3}).json()
    for key in ("similarity", "similarity_z"):  # the cosine of h and of z
        assert pair[key]["trained"] is None
        assert -1 - 1e-6 <= pair[key]["untrained"] <= 1 + 1e-6
    averages = client.get("/api/pairs/averages").json()
    assert averages["trained"] is None and averages["pairs"] == 32
    assert averages["untrained"]["positive"] > averages["untrained"]["negative"] - 0.2
    assert {"positive_z", "negative_z", "positive_std_z", "negative_std_z"} <= set(
        averages["untrained"]
    )


def test_a_pair_is_two_views_of_one_or_two_pictures_and_depends_only_on_its_seed(client):
    positive = client.post("/api/pairs/sample", json={"kind": "positive", "seed": 5}).json()
    negative = client.post("/api/pairs/sample", json={"kind": "negative", "seed": 5}).json()
    assert positive["images"][0] == positive["images"][1]
    assert negative["images"][0] != negative["images"][1]
    for url in positive["views"] + negative["views"]:
        image = decode_png(url)
        assert image.size == (96, 96) and image.mode == "RGB"
    assert positive["views"][0] != positive["views"][1]  # two different augmentations
    again = client.post("/api/pairs/sample", json={"kind": "positive", "seed": 5}).json()
    assert again == positive
    other = client.post("/api/pairs/sample", json={"kind": "positive", "seed": 6}).json()
    assert other["views"] != positive["views"]


@pytest.mark.parametrize(
    "body",
    [
        {"kind": "neutral", "seed": 1},
        {"kind": "positive", "seed": -1},
        {"kind": "positive", "seed": 2**40},
        {"kind": "positive", "seed": "x"},
        {"seed": 1},
        {"kind": "positive", "seed": 1, "encoder": "trained"},
    ],
)
def test_pairs_bad_requests_get_a_readable_422(client, body):
    response = client.post("/api/pairs/sample", json=body)
    assert response.status_code == 422
    assert isinstance(response.json()["detail"], str)


@pytest.mark.slow
def test_trained_encoder_separates_positive_from_negative_pairs(trained_client):
    status = trained_client.get("/api/pairs/status").json()
    assert status["status"] == "ready" and "SimCLR" in status["message"]
    averages = trained_client.get("/api/pairs/averages").json()
    trained, untrained = averages["trained"], averages["untrained"]
    # the trained encoder tells views of one picture from views of two much better
    assert trained["positive"] - trained["negative"] > 0.25
    assert trained["positive"] - trained["negative"] > 3 * (
        untrained["positive"] - untrained["negative"]
    )
    # as the post says: negatives look far less similar on z, where the loss acts, than on h
    assert trained["negative_z"] < trained["negative"]
    pair = trained_client.post("/api/pairs/sample", json={"kind": "positive", "seed": 1}).json()
    assert -1 <= pair["similarity"]["trained"] <= 1


@pytest.mark.slow
def test_server_starts_at_once_and_trains_in_the_background(tmp_path):
    app = create_app(tmp_path, train_encoder=True)
    with TestClient(app) as test_client:
        status = test_client.get("/api/pairs/status").json()
        assert status["status"] == "training" and status["message"].startswith("training")
        pair = test_client.post("/api/pairs/sample", json={"kind": "negative", "seed": 2})
        assert pair.json()["similarity"]["trained"] is None
    # leaving the client shuts the app down, which stops the training process
    process = app.state.panels.encoders._process
    assert process is None or process.poll() is not None


# ---------------------------------------------------------------- panel 3: mini-CLIP
def new_session(client, seed: int = 0) -> tuple[str, dict]:
    answer = client.post("/api/clip/session", json={"seed": seed}).json()
    return answer["session_id"], answer["state"]


def test_clip_session_trains_classifies_and_resets(client):
    session_id, state = new_session(client)
    assert state["epoch"] == 0 and len(state["thumbnails"]) == len(state["image_xy"])
    assert len(state["text_xy"]) == len(state["labels"]) == len(state["prompts"])
    for x, y in state["image_xy"] + state["text_xy"]:
        assert math.hypot(x, y) == pytest.approx(1.0, abs=1e-5)
    first_loss = state["loss"]
    state = client.post(f"/api/clip/{session_id}/step", json={"steps": 20}).json()
    assert state["epoch"] == 20 and state["loss"] < first_loss
    assert client.get(f"/api/clip/{session_id}").json()["epoch"] == 20
    state = client.post(f"/api/clip/{session_id}/reset").json()
    assert state["epoch"] == 0


def test_clip_state_shows_the_learned_temperature_and_held_out_images(client):
    answer = client.post("/api/clip/session", json={"seed": 2}).json()
    state = answer["state"]
    assert state["temperature"] == pytest.approx(1.0)  # the starting temperature
    heldout = state["heldout"]
    assert heldout["count"] == len(heldout["image_xy"]) == len(state["heldout_thumbnails"]) > 0
    assert 0 <= heldout["accuracy"] <= 1
    state = client.post(f"/api/clip/{answer['session_id']}/step", json={"steps": 3}).json()
    assert state["temperature"] != pytest.approx(1.0)  # it is learned


def test_a_typed_prompt_lands_where_the_text_tower_puts_it(client):
    session_id, state = new_session(client, seed=4)
    url = f"/api/clip/{session_id}/prompt"
    same = client.post(url, json={"text": state["prompts"][1]}).json()
    assert same["xy"] == pytest.approx(state["text_xy"][1], abs=1e-6)
    assert same["nearest_prompt"] == 1 and same["unknown_words"] == []
    assert len(same["image_similarity"]) == len(state["image_xy"])
    other = client.post(url, json={"text": "A photo of a blue dog!"}).json()
    assert other["unknown_words"] == ["blue", "dog"]
    assert math.hypot(*other["xy"]) == pytest.approx(1.0, abs=1e-6)
    for bad in ("", "?!", "x" * 201, 5):
        response = client.post(url, json={"text": bad})
        assert response.status_code == 422 and "text" in response.json()["detail"], bad
    assert client.post("/api/clip/unknown-session-id/prompt", json={"text": "a"}).status_code == 404


def test_clip_sessions_do_not_share_state(client):
    first, _ = new_session(client, seed=1)
    second, _ = new_session(client, seed=1)
    client.post(f"/api/clip/{first}/step", json={"steps": 2})
    assert client.get(f"/api/clip/{first}").json()["epoch"] == 2
    assert client.get(f"/api/clip/{second}").json()["epoch"] == 0


def test_clip_sessions_are_capped_and_the_oldest_is_evicted(client):
    ids = [new_session(client)[0] for _ in range(4)]  # the client's cap is 3
    response = client.get(f"/api/clip/{ids[0]}")
    assert response.status_code == 404 and "expired" in response.json()["detail"]
    assert client.get(f"/api/clip/{ids[-1]}").status_code == 200
    assert len(client.app.state.panels.sessions) == 3


def test_clip_bad_requests(client):
    session_id, _ = new_session(client)
    for steps in (0, -3, 201, "many", 1.5):
        response = client.post(f"/api/clip/{session_id}/step", json={"steps": steps})
        assert response.status_code == 422, steps
        assert "steps" in response.json()["detail"]
    assert client.post("/api/clip/session", json={"seed": -4}).status_code == 422
    for bad in ("unknown-session-id", "x", "a" * 100, "bad%20id"):
        response = client.post(f"/api/clip/{bad}/step", json={"steps": 1})
        assert response.status_code == 404, bad
    assert client.delete(f"/api/clip/{session_id}").status_code == 200
    assert client.get(f"/api/clip/{session_id}").status_code == 404
