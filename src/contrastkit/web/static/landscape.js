// Panel 2: the InfoNCE loss landscape; loss and arrows come from POST /api/landscape.
import { $, CENTER, SIZE, addArrowMarkers, api, drawGuides, fmt, showError, svgEl, toPx, unit }
  from "./common.js";

const COLORS = { anchor: "#2563eb", positive: "#16a34a", negative: "#dc2626" };
const MAX_NEGATIVES = 32;
const ARROW_PX = 80; // length of the longest arrow

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

function drawLandscape() {
  const svg = $("landscape-svg");
  svg.replaceChildren();
  addArrowMarkers(svg, COLORS);
  drawGuides(svg);
  const points = landPoints();
  const pushes = points.map(pushOf);
  const longest = Math.max(1e-12, ...pushes.map((g) => (g ? Math.hypot(g[0], g[1]) : 0)));
  points.forEach((point, i) => {
    const [px, py] = toPx(point.xy);
    const g = pushes[i];
    if (g) {
      const scale = ARROW_PX / longest;
      const [dx, dy] = [g[0] * scale, -g[1] * scale];
      if (Math.hypot(dx, dy) > 2) {
        svgEl("line", {
          class: "arrow", x1: px, y1: py, x2: px + dx, y2: py + dy,
          stroke: COLORS[point.role], "marker-end": `url(#head-${point.role})`,
        }, svg);
      }
    }
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
    const [lx, ly] = toPx([point.xy[0] * 1.2, point.xy[1] * 1.2]);
    const text = svgEl("text", {
      class: "point-label", x: lx, y: ly + 4, "text-anchor": "middle",
    }, svg);
    text.textContent = label[point.role];
  });
}

function renderLandscape() {
  const result = land.result;
  if (result) {
    $("loss-value").textContent = fmt(result.loss, 4);
    $("loss-bound").textContent =
      `log(K+1) = ${fmt(result.bound, 3)} for K = ${land.negatives.length} negatives: ` +
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

function angleOf(event) {
  const svg = $("landscape-svg");
  const box = svg.getBoundingClientRect();
  const x = ((event.clientX - box.left) * SIZE) / box.width - CENTER;
  const y = CENTER - ((event.clientY - box.top) * SIZE) / box.height;
  return Math.atan2(y, x);
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
    setPoint(point, unit(angleOf(e)));
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

function addNegative(angle) {
  if (land.negatives.length >= MAX_NEGATIVES) {
    showError("landscape-error", `at most ${MAX_NEGATIVES} negatives on the page`);
    return;
  }
  land.negatives.push(unit(angle ?? Math.random() * 2 * Math.PI));
  updateLandscape();
}

function removeNegative(index) {
  if (land.negatives.length <= 1) {
    showError("landscape-error", "InfoNCE needs at least one negative");
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
  $("landscape-svg").addEventListener("dblclick", (event) => {
    if (event.target.classList.contains("point")) return;
    addNegative(angleOf(event));
  });
  land.temperature = Number(slider.value);
  drawLandscape();
  updateLandscape();
}
