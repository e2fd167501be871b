// Panel 3: a tiny 2-D CLIP per browser session (contrastkit.web.clip2d on the server).
import { $, api, drawGuides, fmt, showError, svgEl, toPx, unit } from "./common.js";

const LABEL_COLORS = ["#7c3aed", "#ea580c", "#0891b2", "#65a30d", "#db2777"];
const TRAIN_EPOCHS = 100; // epochs per click on Train
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

export async function initClip() {
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
