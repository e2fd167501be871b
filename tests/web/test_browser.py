"""The demo page in headless Chromium (Debian's, never downloaded) against a real server process.

Starts ``python -m contrastkit demo --no-browser`` on a free port with the shared trained encoder
in its cache, drives the three panels like a person would, and saves a screenshot of the whole
page to ``test-artifacts/demo.png`` (and to ``docs/demo.png`` when CONTRASTKIT_UPDATE_DOCS=1).
"""

from __future__ import annotations

import math
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.browser]

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
LOCAL_HOSTS = {"127.0.0.1", "localhost"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_health(url: str, process: subprocess.Popen, timeout: float, want: str) -> None:
    """Poll ``url`` (``/api/health``) until its answer contains ``want``."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if process.poll() is not None:
            pytest.fail(f"the demo server exited with code {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200 and want in response.read().decode():
                    return
        except OSError:
            pass
        time.sleep(0.1)
    pytest.fail(f"{url} did not answer {want!r} within {timeout} s")


@pytest.fixture
def server(demo_cache):
    """A real ``contrastkit demo`` process; yields its URL."""
    port = free_port()
    env = {**os.environ, "CONTRASTKIT_CACHE": str(demo_cache)}
    command = [sys.executable, "-m", "contrastkit", "demo", "--no-browser", "--port", str(port)]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        # the server answers within seconds; the panels' library (torch...) loads meanwhile
        wait_for_health(url + "api/health", process, timeout=60, want='"status":"ok"')
        wait_for_health(url + "api/health", process, timeout=180, want='"panels":"ready"')
        yield url
    finally:
        process.terminate()
        try:
            output, _ = process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
    assert "Traceback" not in output, output
    assert f"serving on {url}" in output


def number(text: str) -> float:
    match = re.search(r"-?\d+(\.\d+)?", text)
    assert match, f"no number in {text!r}"
    return float(match.group())


def settled_loss(page) -> float:
    page.wait_for_selector('#loss-value[data-pending="0"]', timeout=30_000)
    return number(page.inner_text("#loss-value"))


def center(page, selector: str) -> tuple[float, float]:
    box = page.locator(selector).bounding_box()
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


def watch_for_problems(page, problems: list[str]) -> None:
    """Record console errors, page errors, failed or error responses and any network request."""

    def on_console(message) -> None:
        if message.type == "error":
            problems.append(f"console error: {message.text}")

    def on_request(request) -> None:
        parsed = urlparse(request.url)
        if parsed.scheme in ("http", "https", "ws", "wss") and parsed.hostname not in LOCAL_HOSTS:
            problems.append(f"request to the network: {request.url}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("request", on_request)
    page.on("requestfailed", lambda r: problems.append(f"failed request: {r.url}"))
    page.on(
        "response",
        lambda r: problems.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None,
    )


def check_landscape_panel(page) -> None:
    """Panel 2: dragging a negative toward the anchor raises the loss; the temperature moves it."""
    page.wait_for_selector('#landscape-svg circle[data-role="negative"]')
    before = settled_loss(page)
    negative = '#landscape-svg circle[data-role="negative"][data-index="0"]'
    nx, ny = center(page, negative)
    ax, ay = center(page, '#landscape-svg circle[data-role="anchor"]')
    cx, cy = center(page, "#landscape-svg")
    # drop it on the circle just past the anchor (0.45 rad clockwise), where no point sits
    angle = math.atan2(cy - ay, ax - cx) - 0.45
    radius = math.hypot(ax - cx, ay - cy)
    tx, ty = cx + radius * math.cos(angle), cy - radius * math.sin(angle)
    page.mouse.move(nx, ny)
    page.mouse.down()
    for t in (0.25, 0.5, 0.75, 1.0):
        page.mouse.move(nx + t * (tx - nx), ny + t * (ty - ny), steps=3)
    page.mouse.up()
    dragged = settled_loss(page)
    assert dragged > before + 0.1, (before, dragged)
    page.focus("#temperature")
    for _ in range(30):
        page.keyboard.press("ArrowLeft")
    assert number(page.inner_text("#temperature-value")) == pytest.approx(0.2)
    colder = settled_loss(page)
    assert abs(colder - dragged) > 0.05, (dragged, colder)


def svg_center_distance(page, selector: str) -> float:
    """Distance of a point from the plane's centre, in the SVG's own units (420 across)."""
    return page.eval_on_selector(
        selector, "c => Math.hypot(c.cx.baseVal.value - 210, c.cy.baseVal.value - 210)"
    )


def arrows(page) -> list[tuple[float, float]]:
    """(drawn length, gradient size) of every arrow of panel 2."""
    return page.eval_on_selector_all(
        "#landscape-svg line.arrow",
        "ls => ls.map(l => [Math.hypot(l.x2.baseVal.value - l.x1.baseVal.value,"
        " l.y2.baseVal.value - l.y1.baseVal.value), Number(l.dataset.gradient)])",
    )


def check_landscape_controls(page) -> None:
    """Panel 2: points off the circle, arrows at true size, the last negative, snapping."""
    page.locator("#landscape-svg").scroll_into_view_if_needed()  # the mouse needs it on screen
    negative = '#landscape-svg circle[data-role="negative"][data-index="1"]'
    before, radius = settled_loss(page), svg_center_distance(page, negative)
    nx, ny = center(page, negative)
    cx, cy = center(page, "#landscape-svg")
    page.mouse.move(nx, ny)
    page.mouse.down()
    page.mouse.move((nx + cx) / 2, (ny + cy) / 2, steps=4)  # halfway to the centre
    page.mouse.up()
    # the loss uses its direction only; the mouse lands on whole pixels, so the direction may
    # turn by a hair (1e-4 in the shown loss), far less than a loss that used the length would
    assert settled_loss(page) == pytest.approx(before, abs=5e-4)
    assert svg_center_distance(page, negative) == pytest.approx(radius / 2, rel=0.1)
    assert page.locator("#landscape-svg .direction-ring").count() == 1
    # arrows at true size: 60 px per unit of gradient (cut at 190 px), else the longest is 80
    assert max(length for length, _ in arrows(page)) == pytest.approx(80, abs=0.5)
    page.check("#true-length")
    for length, size in arrows(page):
        assert length == pytest.approx(min(60 * size, 190), abs=0.5)
    assert "60 px per unit" in page.inner_text("#arrow-scale")
    # the last negative cannot be removed: with none the loss would be log(1) = 0
    for _ in range(6):  # one click more than there are negatives; force: it may be disabled
        page.click("#btn-remove-negative", force=True)
    settled_loss(page)
    assert page.inner_text("#negatives-count") == "1" and page.is_visible("#negatives-note")
    assert "teach nothing" in page.inner_text("#negatives-note")
    assert "K = 1 negative:" in page.inner_text("#loss-bound")
    assert page.inner_text("#loss-value") != "0.0000"
    page.click('#landscape-svg circle[data-role="negative"]', button="right")
    assert page.locator('#landscape-svg circle[data-role="negative"]').count() == 1
    page.check("#snap-circle")  # every point back onto the circle
    settled_loss(page)
    for role in ("anchor", "positive", "negative"):
        selector = f'#landscape-svg circle[data-role="{role}"]'
        assert svg_center_distance(page, selector) == pytest.approx(150, abs=0.5)
    page.click("#btn-add-negative")
    settled_loss(page)
    assert page.is_enabled("#btn-remove-negative") and page.is_hidden("#negatives-note")


def check_clip_panel(page) -> None:
    """Panel 3: Train lowers the loss and the temperature; Classify beats chance; prompts land."""
    page.wait_for_selector("#clip-svg .clip-image")
    first_loss = number(page.inner_text("#clip-loss"))
    assert page.inner_text("#clip-epoch") == "0"
    page.click("#btn-train")
    page.wait_for_function(
        "document.getElementById('btn-train').textContent === 'Train' && "
        "Number(document.getElementById('clip-epoch').textContent) > 0",
        timeout=120_000,
    )
    assert number(page.inner_text("#clip-epoch")) >= 100
    assert number(page.inner_text("#clip-loss")) < first_loss
    page.click("#btn-classify")
    page.wait_for_function("document.getElementById('clip-accuracy').textContent.includes('%')")
    accuracy_text = page.inner_text("#clip-accuracy")
    accuracy, chance = (float(v) for v in re.findall(r"(\d+)%", accuracy_text))
    assert accuracy > chance, accuracy_text
    assert re.search(r"\d+% of \d+ images it never trained on", page.inner_text("#clip-heldout"))
    assert page.locator("#clip-svg .clip-heldout[visibility=visible]").count() > 0
    assert number(page.inner_text("#clip-temperature")) != 1.0  # learned: it moved from 1
    page.fill("#prompt-text", "a photo of a circle")
    page.click("#btn-prompt")
    page.wait_for_selector("#prompt-result[data-nearest]")
    assert page.get_attribute("#prompt-result", "data-nearest") == "circle"
    assert page.get_attribute("#clip-svg .clip-typed", "visibility") == "visible"
    page.fill("#prompt-text", "a photo of a dog")
    page.press("#prompt-text", "Enter")
    page.wait_for_function("document.getElementById('prompt-result').textContent.includes('dog')")
    assert "<unk>" in page.inner_text("#prompt-result")


def check_pairs_panel(page) -> None:
    """Panel 1: with the trained encoder, positive pairs are more similar than negative ones."""
    page.wait_for_selector("#encoder-status.ready", timeout=120_000)
    page.wait_for_function(
        "!document.querySelector('#avg-trained td:nth-child(2)').textContent.includes('train')"
        " && document.querySelector('#avg-trained td:nth-child(3)').textContent !== ''"
    )
    cells = page.locator("#avg-trained td").all_inner_texts()
    positive, negative = number(cells[1]), number(cells[2])
    assert positive > negative + 0.2, cells
    z_cells = page.locator("#avg-trained-z td").all_inner_texts()
    assert -1 <= number(z_cells[2]) <= 1, z_cells
    table = page.inner_text("#averages")
    assert "training" not in table and "measuring" not in table  # once the encoder is ready
    page.click('label:has(input[value="trained"])')
    for button in ("#btn-negative", "#btn-positive"):
        page.click(button)
        page.wait_for_function(
            f"document.getElementById('pair-similarity').dataset.kind === '{button.split('-')[1]}'"
        )
        for readout in ("#pair-similarity", "#pair-similarity-z"):
            assert -1 <= number(page.inner_text(readout)) <= 1


def check_narrow_screen(browser, url: str, problems: list[str]) -> None:
    """At 420 px wide nothing is wider than the window: the drawings shrink to fit."""
    page = browser.new_page(viewport={"width": 420, "height": 800})
    watch_for_problems(page, problems)
    page.goto(url)
    page.wait_for_selector("#clip-svg .clip-image")
    page.wait_for_selector('#landscape-svg circle[data-role="negative"]')
    too_wide = page.evaluate(
        """() => [...document.querySelectorAll('body *')]
          .filter(el => !(el.closest('svg') && el.tagName.toLowerCase() !== 'svg'))
          .filter(el => { const r = el.getBoundingClientRect();
                          return r.right > innerWidth + 0.5 || r.left < -0.5; })
          .map(el => `${el.tagName}#${el.id}`)"""
    )
    assert too_wide == [], too_wide
    assert page.evaluate("document.documentElement.scrollWidth") <= 420
    # a drag on the shrunken plane still lands where the pointer is
    page.locator("#landscape-svg").scroll_into_view_if_needed()
    negative = '#landscape-svg circle[data-role="negative"][data-index="0"]'
    cx, cy = center(page, "#landscape-svg")
    nx, ny = center(page, negative)
    page.mouse.move(nx, ny)
    page.mouse.down()
    page.mouse.move((nx + cx) / 2, (ny + cy) / 2, steps=3)
    page.mouse.up()
    mx, my = center(page, negative)
    assert math.hypot(mx - (nx + cx) / 2, my - (ny + cy) / 2) < 3
    page.close()


def save_screenshot(page) -> None:
    page.wait_for_timeout(300)  # let the last animation finish
    artifacts = ROOT / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    page.screenshot(path=str(artifacts / "demo.png"), full_page=True)
    if os.environ.get("CONTRASTKIT_UPDATE_DOCS") == "1":
        (ROOT / "docs").mkdir(exist_ok=True)
        shutil.copyfile(artifacts / "demo.png", ROOT / "docs" / "demo.png")


def test_demo_page(server):
    from playwright.sync_api import sync_playwright

    problems: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1180, "height": 900})
        watch_for_problems(page, problems)
        page.goto(server)
        check_landscape_panel(page)
        check_landscape_controls(page)
        check_clip_panel(page)
        check_pairs_panel(page)
        save_screenshot(page)
        check_narrow_screen(browser, server, problems)
        browser.close()
    assert not problems, problems
