// Panel 2: the InfoNCE loss landscape; loss and arrows come from POST /api/landscape.
import {
  $, CENTER, RADIUS, SIZE, addArrowMarkers, api, drawGuides, fmt, showError, svgEl, toPx, unit,
} from "./common.js";

const COLORS = { anchor: "#2563eb", positive: "#16a34a", negative: "#dc2626" };
const MAX_NEGATIVES = 32;
const ARROW_PX = 80; // length of the longest arrow, when arrows are scaled to it
export const PX_PER_GRADIENT = 60; // arrow pixels per unit of gradient, at true size
const MAX_ARROW_PX = 190; // longer true-size arrows are cut here and drawn dashed
const MIN_NORM = 0.15; // points are kept this far from the origin (it has no direction)
const MAX_COORD = 1.35; // and inside the drawn square

const land = {
  anchor: unit(0.35),
  positive: unit(1.05),
  negatives: [unit(2.2), unit(3.3), unit(4.3), unit(5.4)],
  temperature: 0.5,
  result: null,
  inFlight: false,
  dirty: false,
  dragging: null,
};

function landPoints() {
  const points = [
    { role: "anchor", index: 0, xy: land.anchor },
    { role: "positive", index: 0, xy: land.positive },
  ];
  land.negatives.forEach((xy, index) => points.push({ role: "negative", index, xy }));
  return points;
}

function pushOf(point) {
  // the arrows of the last answer; hidden while the number of negatives differs from it
  const push = land.result && land.result.push;
  if (!push || push.negatives.length !== land.negatives.length) return null;
  return point.role === "negative" ? push.negatives[point.index] : push[point.role];
}

function arrowScale(pushes) {
  // pixels per unit of gradient: fixed (true size), or so that the longest arrow is ARROW_PX
  if ($("true-length").checked) return PX_PER_GRADIENT;
  const longest = Math.max(1e-12, ...pushes.map((g) => (g ? Math.hypot(g[0], g[1]) : 0)));
  return ARROW_PX / longest;
}

function drawArrow(svg, point, g, scale) {
  const [px, py] = toPx(point.xy);
  let [dx, dy] = [g[0] * scale, -g[1] * scale];
  const length = Math.hypot(dx, dy);
  if (length <= 2) return;
  const cut = length > MAX_ARROW_PX;
  if (cut) [dx, dy] = [(dx * MAX_ARROW_PX) / length, (dy * MAX_ARROW_PX) / length];
  svgEl("line", {
    class: cut ? "arrow cut" : "arrow", x1: px, y1: py, x2: px + dx, y2: py + dy,
    stroke: COLORS[point.role], "marker-end": `url(#head-${point.role})`,
    "data-role": point.role, "data-index": point.index, "data-gradient": Math.hypot(...g),
  }, svg);
}

function drawDirection(svg, point) {
  // a point off the circle: a ring where the loss sees it (its direction on the unit circle)
  const norm = Math.hypot(point.xy[0], point.xy[1]);
  if (Math.abs(norm - 1) < 0.02) return;
  const [px, py] = toPx(point.xy);
  const [rx, ry] = toPx([point.xy[0] / norm, point.xy[1] / norm]);
  svgEl("line", { class: "direction", x1: px, y1: py, x2: rx, y2: ry }, svg);
  svgEl("circle", {
    class: "direction-ring", cx: rx, cy: ry, r: 6, stroke: COLORS[point.role],
  }, svg);
}

function drawLandscape() {
  const svg = $("landscape-svg");
  svg.replaceChildren();
  addArrowMarkers(svg, COLORS);
  drawGuides(svg);
  const points = landPoints();
  const pushes = points.map(pushOf);
  const scale = arrowScale(pushes);
  points.forEach((point) => drawDirection(svg, point));
  points.forEach((point, i) => {
    if (pushes[i]) drawArrow(svg, point, pushes[i], scale);
  });
  points.forEach((point) => {
    const [px, py] = toPx(point.xy);
    const circle = svgEl("circle", {
      class: "point", cx: px, cy: py, r: point.role === "negative" ? 9 : 11,
      fill: COLORS[point.role], "data-role": point.role, "data-index": point.index,
    }, svg);
    circle.addEventListener("pointerdown", (event) => startDrag(event, point));
    if (point.role === "negative") {
      circle.addEventListener("contextmenu", (event) => {
        event.preventDefault();
        removeNegative(point.index);
      });
    }
    const label = { anchor: "anchor", positive: "positive", negative: `n${point.index + 1}` };
    const norm = Math.hypot(point.xy[0], point.xy[1]);
    const out = (norm + 0.2) / norm;
    const [lx, ly] = toPx([point.xy[0] * out, point.xy[1] * out]);
    const text = svgEl("text", {
      class: "point-label", x: lx, y: ly + 4, "text-anchor": "middle",
    }, svg);
    text.textContent = label[point.role];
  });
  renderScaleNote(pushes);
}

function renderScaleNote(pushes) {
  const sizes = pushes.filter((g) => g).map((g) => Math.hypot(g[0], g[1]));
  if (!sizes.length) return;
  const longest = Math.max(...sizes);
  const how = $("true-length").checked
    ? `${PX_PER_GRADIENT} px per unit (dashed: cut at ${MAX_ARROW_PX} px)`
    : `the longest drawn at ${ARROW_PX} px`;
  $("arrow-scale").textContent =
    `largest gradient |\u2207| = ${fmt(longest, 2)} (1/\u03c4 = ${fmt(1 / land.temperature, 2)}); ` +
    `arrows: ${how}`;
}

export function fmtLoss(loss) {
  // a loss that rounds to 0.0000 is not zero: show its size instead of a misleading 0
  return loss > 0 && loss < 5e-4 ? Number(loss).toExponential(2) : fmt(loss, 4);
}

function renderLandscape() {
  const result = land.result;
  const k = land.negatives.length;
  $("negatives-count").textContent = k;
  $("btn-remove-negative").disabled = k <= 1;
  $("btn-remove-negative").title = k <= 1 ? "InfoNCE needs at least one negative" : "";
  $("negatives-note").hidden = k > 1;
  if (result) {
    $("loss-value").textContent = fmtLoss(result.loss);
    $("loss-bound").textContent =
      `log(K+1) = ${fmt(result.bound, 3)} for K = ${k} negative${k === 1 ? "" : "s"}: ` +
      "the loss of an anchor that cannot tell its positive from the negatives.";
  }
  drawLandscape();
}

async function updateLandscape() {
  $("loss-value").dataset.pending = "1"; // "0" once the shown loss matches the points
  if (land.inFlight) {
    land.dirty = true;
    return;
  }
  land.inFlight = true;
  land.dirty = false;
  try {
    land.result = await api("POST", "/api/landscape", {
      anchor: land.anchor,
      positive: land.positive,
      negatives: land.negatives,
      temperature: land.temperature,
    });
    showError("landscape-error", null);
  } catch (err) {
    showError("landscape-error", err);
  } finally {
    land.inFlight = false;
  }
  if (land.dirty) {
    updateLandscape();
  } else {
    renderLandscape();
    $("loss-value").dataset.pending = "0";
  }
}

function planeXY(event) {
  // the pointer in data coordinates (the SVG may be drawn smaller than 420 px)
  const box = $("landscape-svg").getBoundingClientRect();
  const x = ((event.clientX - box.left) * SIZE) / box.width - CENTER;
  const y = CENTER - ((event.clientY - box.top) * SIZE) / box.height;
  return [x / RADIUS, y / RADIUS];
}

function placeAt(xy) {
  // where a dropped point goes: onto the circle, or where dropped (off the origin, in view)
  const norm = Math.hypot(xy[0], xy[1]);
  const angle = Math.atan2(xy[1], xy[0]);
  if ($("snap-circle").checked) return unit(angle);
  if (norm < MIN_NORM) return [MIN_NORM * Math.cos(angle), MIN_NORM * Math.sin(angle)];
  return xy.map((v) => Math.max(-MAX_COORD, Math.min(MAX_COORD, v)));
}

function setPoint(point, xy) {
  if (point.role === "negative") land.negatives[point.index] = xy;
  else land[point.role] = xy;
}

function startDrag(event, point) {
  event.preventDefault();
  if (event.button !== 0) return;
  land.dragging = point;
  const move = (e) => {
    setPoint(point, placeAt(planeXY(e)));
    drawLandscape();
    updateLandscape();
  };
  const up = () => {
    land.dragging = null;
    window.removeEventListener("pointermove", move);
    window.removeEventListener("pointerup", up);
  };
  window.addEventListener("pointermove", move);
  window.addEventListener("pointerup", up);
}

function addNegative(xy) {
  if (land.negatives.length >= MAX_NEGATIVES) {
    showError("landscape-error", `at most ${MAX_NEGATIVES} negatives on the page`);
    return;
  }
  land.negatives.push(xy ?? unit(Math.random() * 2 * Math.PI));
  updateLandscape();
}

function removeNegative(index) {
  if (land.negatives.length <= 1) {
    // with K = 0 the loss is log(1) = 0 for any points: nothing to learn, so it is not offered
    $("negatives-note").hidden = false;
    return;
  }
  land.negatives.splice(index ?? land.negatives.length - 1, 1);
  updateLandscape();
}

export function initLandscape() {
  const slider = $("temperature");
  slider.addEventListener("input", () => {
    land.temperature = Number(slider.value);
    $("temperature-value").textContent = fmt(land.temperature, 2);
    updateLandscape();
  });
  $("btn-add-negative").addEventListener("click", () => addNegative());
  $("btn-remove-negative").addEventListener("click", () => removeNegative());
  $("btn-shuffle").addEventListener("click", () => {
    land.anchor = unit(Math.random() * 2 * Math.PI);
    land.positive = unit(Math.atan2(land.anchor[1], land.anchor[0]) + (Math.random() - 0.5) * 1.5);
    land.negatives = land.negatives.map(() => unit(Math.random() * 2 * Math.PI));
    updateLandscape();
  });
  $("true-length").addEventListener("change", drawLandscape);
  $("snap-circle").addEventListener("change", () => {
    if (!$("snap-circle").checked) return;
    const snap = (xy) => unit(Math.atan2(xy[1], xy[0]));
    land.anchor = snap(land.anchor);
    land.positive = snap(land.positive);
    land.negatives = land.negatives.map(snap);
    updateLandscape();
  });
  $("landscape-svg").addEventListener("dblclick", (event) => {
    if (event.target.classList.contains("point")) return;
    addNegative(placeAt(planeXY(event)));
  });
  land.temperature = Number(slider.value);
  renderLandscape();
  updateLandscape();
}
