// contrastkit demo page. The browser only draws and sends coordinates: every loss, gradient,
// similarity and training step is computed by the server with contrastkit.
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";
const $ = (id) => document.getElementById(id);

async function api(method, path, body) {
  const options = { method, headers: {} };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(path, options);
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    const detail = typeof data.detail === "string" ? data.detail : response.statusText;
    const error = new Error(detail);
    error.status = response.status;
    throw error;
  }
  return data;
}

function svgEl(name, attrs, parent) {
  const el = document.createElementNS(SVG_NS, name);
  for (const [key, value] of Object.entries(attrs)) el.setAttribute(key, value);
  if (parent) parent.appendChild(el);
  return el;
}

function fmt(x, digits = 3) {
  return x === null || x === undefined ? "\u2013" : Number(x).toFixed(digits);
}

function showError(id, err) {
  $(id).textContent = err ? String(err.message || err) : "";
}

// A plane of 420 x 420 px showing data coordinates in [-1.4, 1.4]^2, y up.
const SIZE = 420;
const CENTER = SIZE / 2;
const RADIUS = 150; // pixels per data unit
const toPx = ([x, y], radius = RADIUS) => [CENTER + radius * x, CENTER - radius * y];

function drawGuides(svg, radius = RADIUS) {
  svgEl("line", { class: "axis", x1: 10, y1: CENTER, x2: SIZE - 10, y2: CENTER }, svg);
  svgEl("line", { class: "axis", x1: CENTER, y1: 10, x2: CENTER, y2: SIZE - 10 }, svg);
  svgEl("circle", { class: "circle-guide", cx: CENTER, cy: CENTER, r: radius }, svg);
}

function addArrowMarkers(svg, colors) {
  const defs = svgEl("defs", {}, svg);
  for (const [name, color] of Object.entries(colors)) {
    const marker = svgEl("marker", {
      id: `head-${name}`, viewBox: "0 0 10 10", refX: 6, refY: 5,
      markerWidth: 4, markerHeight: 4, orient: "auto-start-reverse",
    }, defs);
    svgEl("path", { d: "M 0 0 L 10 5 L 0 10 z", fill: color }, marker);
  }
}

// ---------------------------------------------------------------- panel 1: augmentation pairs
const pairs = { current: null, encoder: "untrained", trained: "unknown", averages: null };

function renderPair() {
  const pair = pairs.current;
  if (!pair) return;
  $("view-a").src = pair.views[0];
  $("view-b").src = pair.views[1];
  $("pair-kind").textContent =
    pair.kind === "positive"
      ? "Positive pair: two views of the same picture"
      : "Negative pair: views of two different pictures";
  $("caption-a").textContent = `view of ${pair.images[0]}`;
  $("caption-b").textContent = `view of ${pair.images[1]}`;
  const value = pair.similarity[pairs.encoder];
  $("pair-similarity").textContent =
    value === null || value === undefined ? "training\u2026" : fmt(value);
  $("pair-similarity").dataset.kind = pair.kind;
}

async function newPair(kind, seed) {
  try {
    seed = seed ?? Math.floor(Math.random() * 2 ** 31);
    pairs.current = await api("POST", "/api/pairs/sample", { kind, seed });
    renderPair();
    showError("pairs-error", null);
  } catch (err) {
    showError("pairs-error", err);
  }
}

function renderAverages() {
  const data = pairs.averages;
  if (!data) return;
  $("averages-caption").textContent =
    `Mean cosine similarity of h over ${data.pairs} sampled positive and ${data.pairs} negative pairs`;
  for (const name of ["untrained", "trained"]) {
    const row = $(`avg-${name}`);
    const stats = data[name];
    const cells = row.querySelectorAll("td");
    if (!stats) {
      cells[1].textContent = pairs.trained === "failed" ? "unavailable" : "training\u2026";
      continue;
    }
    cells[1].textContent = fmt(stats.positive);
    cells[2].textContent = fmt(stats.negative);
    cells[3].textContent = fmt(stats.positive - stats.negative);
  }
}

async function refreshAverages() {
  try {
    pairs.averages = await api("GET", "/api/pairs/averages");
    renderAverages();
  } catch (err) {
    showError("pairs-error", err);
  }
}

async function pollEncoder() {
  let status;
  try {
    status = await api("GET", "/api/pairs/status");
  } catch (err) {
    showError("pairs-error", err);
    setTimeout(pollEncoder, 3000);
    return;
  }
  const line = $("encoder-status");
  line.className = `status ${status.status}`;
  line.textContent = `trained encoder: ${status.message}`;
  const wasReady = pairs.trained === "ready";
  pairs.trained = status.status;
  if (status.status === "training" || status.status === "starting") {
    setTimeout(pollEncoder, 1500);
  } else if (status.status === "ready" && !wasReady) {
    await refreshAverages();
    if (pairs.current) await newPair(pairs.current.kind, pairs.current.seed);
  } else {
    renderAverages();
  }
}

function initPairs() {
  $("btn-positive").addEventListener("click", () => newPair("positive"));
  $("btn-negative").addEventListener("click", () => newPair("negative"));
  for (const input of document.querySelectorAll('input[name="encoder"]')) {
    input.addEventListener("change", () => {
      pairs.encoder = input.value;
      renderPair();
    });
  }
  newPair("positive");
  refreshAverages();
  pollEncoder();
}

// ---------------------------------------------------------------- panel 2: loss landscape
const COLORS = { anchor: "#2563eb", positive: "#16a34a", negative: "#dc2626" };
const MAX_NEGATIVES = 32;
const ARROW_PX = 80; // length of the longest arrow
const unit = (angle) => [Math.cos(angle), Math.sin(angle)];

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

function initLandscape() {
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

// ---------------------------------------------------------------- panel 3: mini-CLIP
const LABEL_COLORS = ["#7c3aed", "#ea580c", "#0891b2", "#65a30d", "#db2777"];
const TRAIN_EPOCHS = 60; // epochs per click on Train
const STEPS_PER_REQUEST = 3;
const THUMB = 20; // pixels of an image thumbnail
const CLIP_RADIUS = 125; // pixels of the unit circle (room for the prompt labels outside)

const clip = { id: null, state: null, thumbnails: [], classified: false, training: false, nodes: null };

function clipRadius(i) {
  // only the angle of a point matters (embeddings are on the unit circle); images are drawn at
  // different distances from the centre so that images at the same angle stay visible
  return 0.42 + 0.46 * (((i * 7) % 12) / 11);
}

function buildClipScene() {
  const svg = $("clip-svg");
  svg.replaceChildren();
  drawGuides(svg, CLIP_RADIUS);
  const state = clip.state;
  const nodes = { images: [], dots: [], prompts: [] };
  state.image_xy.forEach((_, i) => {
    nodes.dots.push(svgEl("circle", { class: "clip-dot", r: 2.5 }, svg));
  });
  state.image_xy.forEach((_, i) => {
    const g = svgEl("g", { class: "clip-image", "data-index": i }, svg);
    svgEl("rect", {
      class: "thumb-frame", x: -THUMB / 2 - 2, y: -THUMB / 2 - 2,
      width: THUMB + 4, height: THUMB + 4, rx: 3,
    }, g);
    svgEl("image", {
      href: clip.thumbnails[i], x: -THUMB / 2, y: -THUMB / 2, width: THUMB, height: THUMB,
    }, g);
    nodes.images.push(g);
  });
  state.text_xy.forEach((_, c) => {
    const g = svgEl("g", { class: "clip-prompt", "data-label": state.labels[c] }, svg);
    svgEl("circle", { r: 13, fill: LABEL_COLORS[c % LABEL_COLORS.length] }, g);
    const text = svgEl("text", { class: "prompt-label" }, g);
    text.textContent = state.labels[c];
    nodes.prompts.push(g);
  });
  clip.nodes = nodes;
  const legend = $("clip-legend");
  legend.replaceChildren();
  state.prompts.forEach((prompt, c) => {
    const item = document.createElement("span");
    const swatch = document.createElement("i");
    swatch.style.background = LABEL_COLORS[c % LABEL_COLORS.length];
    item.append(swatch, `\u201c${prompt}\u201d`);
    legend.appendChild(item);
  });
}

function placeClip() {
  const { state, nodes } = clip;
  state.image_xy.forEach(([x, y], i) => {
    const angle = Math.atan2(y, x);
    const [dx, dy] = toPx(unit(angle), CLIP_RADIUS);
    nodes.dots[i].setAttribute("cx", dx);
    nodes.dots[i].setAttribute("cy", dy);
    const [px, py] = toPx(unit(angle), CLIP_RADIUS * clipRadius(i));
    nodes.images[i].style.transform = `translate(${px}px, ${py}px)`;
    const frame = nodes.images[i].firstChild;
    const predicted = state.predictions[i];
    if (clip.classified) {
      frame.setAttribute("fill", LABEL_COLORS[predicted % LABEL_COLORS.length]);
      frame.classList.toggle("wrong", predicted !== state.image_labels[i]);
    } else {
      frame.setAttribute("fill", "#98a2b3");
      frame.classList.remove("wrong");
    }
  });
  state.text_xy.forEach(([x, y], c) => {
    const direction = unit(Math.atan2(y, x));
    const [px, py] = toPx(direction, CLIP_RADIUS);
    nodes.prompts[c].style.transform = `translate(${px}px, ${py}px)`;
    // the label sits outside the circle, beyond the prompt
    const text = nodes.prompts[c].lastChild;
    text.setAttribute("x", 20 * direction[0]);
    text.setAttribute("y", -24 * direction[1] + 4);
    const anchor = direction[0] > 0.35 ? "start" : direction[0] < -0.35 ? "end" : "middle";
    text.setAttribute("text-anchor", anchor);
  });
  $("clip-epoch").textContent = state.epoch;
  $("clip-loss").textContent = fmt(state.loss, 4);
  $("clip-accuracy").textContent = clip.classified
    ? `${(100 * state.accuracy).toFixed(0)}% (chance ${(100 * state.chance).toFixed(0)}%)`
    : "\u2013 (press Classify)";
}

async function clipCall(method, suffix, body) {
  try {
    return await api(method, `/api/clip/${clip.id}${suffix}`, body);
  } catch (err) {
    if (err.status === 404) {  // the session expired: start a new one
      await newClipSession();
      return null;
    }
    throw err;
  }
}

async function newClipSession() {
  const answer = await api("POST", "/api/clip/session", {});
  clip.id = answer.session_id;
  clip.thumbnails = answer.state.thumbnails;
  clip.state = answer.state;
  clip.classified = false;
  buildClipScene();
  placeClip();
}

function setTraining(on) {
  clip.training = on;
  $("btn-train").textContent = on ? "Pause" : "Train";
}

async function trainClip() {
  if (clip.training) {
    setTraining(false);
    return;
  }
  setTraining(true);
  const target = clip.state.epoch + TRAIN_EPOCHS;
  try {
    while (clip.training && clip.state.epoch < target) {
      const steps = Math.min(STEPS_PER_REQUEST, target - clip.state.epoch);
      const state = await clipCall("POST", "/step", { steps });
      if (!state) break;
      clip.state = state;
      placeClip();
    }
    showError("clip-error", null);
  } catch (err) {
    showError("clip-error", err);
  } finally {
    setTraining(false);
  }
}

async function initClip() {
  $("btn-train").addEventListener("click", trainClip);
  $("btn-classify").addEventListener("click", async () => {
    try {
      const state = await clipCall("GET", "");
      if (state) clip.state = state;
      clip.classified = true;
      placeClip();
    } catch (err) {
      showError("clip-error", err);
    }
  });
  $("btn-reset").addEventListener("click", async () => {
    setTraining(false);
    try {
      const state = await clipCall("POST", "/reset");
      if (state) {
        clip.state = state;
        clip.classified = false;
        placeClip();
      }
    } catch (err) {
      showError("clip-error", err);
    }
  });
  try {
    await newClipSession();
  } catch (err) {
    showError("clip-error", err);
  }
}

window.addEventListener("DOMContentLoaded", () => {
  initPairs();
  initLandscape();
  initClip();
});
