// Panel 3: a tiny 2-D CLIP per browser session (contrastkit.web.clip2d on the server).
import { $, api, drawGuides, fmt, showError, svgEl, toPx, unit } from "./common.js";

const LABEL_COLORS = ["#7c3aed", "#ea580c", "#0891b2", "#65a30d", "#db2777"];
const TRAIN_EPOCHS = 100; // epochs per click on Train
const STEPS_PER_REQUEST = 3;
const THUMB = 20; // pixels of an image thumbnail
const HELDOUT_THUMB = 14; // held-out images are drawn smaller, near the centre
const CLIP_RADIUS = 125; // pixels of the unit circle (room for the prompt labels outside)

const clip = {
  id: null, state: null, thumbnails: [], heldoutThumbnails: [], classified: false,
  training: false, nodes: null, typed: null,
};

function clipRadius(i) {
  // only the angle of a point matters (embeddings are on the unit circle); images are drawn at
  // different distances from the centre so that images at the same angle stay visible
  return 0.42 + 0.46 * (((i * 7) % 12) / 11);
}

function heldoutRadius(i) {
  return 0.14 + 0.2 * (((i * 5) % 7) / 6); // inside the training images' ring
}

function thumbnail(svg, href, className, index, size = THUMB) {
  const g = svgEl("g", { class: className, "data-index": index }, svg);
  svgEl("rect", {
    class: "thumb-frame", x: -size / 2 - 2, y: -size / 2 - 2,
    width: size + 4, height: size + 4, rx: 3,
  }, g);
  svgEl("image", { href, x: -size / 2, y: -size / 2, width: size, height: size }, g);
  return g;
}

function colourFrame(frame, predicted, truth) {
  if (clip.classified) {
    frame.setAttribute("fill", LABEL_COLORS[predicted % LABEL_COLORS.length]);
    frame.classList.toggle("wrong", predicted !== truth);
  } else {
    frame.setAttribute("fill", "#98a2b3");
    frame.classList.remove("wrong");
  }
}

function buildClipScene() {
  const svg = $("clip-svg");
  svg.replaceChildren();
  drawGuides(svg, CLIP_RADIUS);
  const state = clip.state;
  const nodes = { images: [], dots: [], prompts: [], heldout: [], typed: null };
  state.image_xy.forEach(() => {
    nodes.dots.push(svgEl("circle", { class: "clip-dot", r: 2.5 }, svg));
  });
  state.image_xy.forEach((_, i) => {
    nodes.images.push(thumbnail(svg, clip.thumbnails[i], "clip-image", i));
  });
  state.heldout.image_xy.forEach((_, i) => {
    nodes.heldout.push(thumbnail(svg, clip.heldoutThumbnails[i], "clip-heldout", i, HELDOUT_THUMB));
  });
  state.text_xy.forEach((_, c) => {
    const g = svgEl("g", { class: "clip-prompt", "data-label": state.labels[c] }, svg);
    svgEl("circle", { r: 13, fill: LABEL_COLORS[c % LABEL_COLORS.length] }, g);
    const text = svgEl("text", { class: "prompt-label" }, g);
    text.textContent = state.labels[c];
    nodes.prompts.push(g);
  });
  const typed = svgEl("g", { class: "clip-typed", visibility: "hidden" }, svg);
  svgEl("path", { d: starPath(11, 5), fill: "#111827" }, typed);
  svgEl("text", { class: "prompt-label typed-label", y: 24, "text-anchor": "middle" }, typed);
  nodes.typed = typed;
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
    colourFrame(nodes.images[i].firstChild, state.predictions[i], state.image_labels[i]);
  });
  const heldout = state.heldout;
  heldout.image_xy.forEach(([x, y], i) => {
    const [px, py] = toPx(unit(Math.atan2(y, x)), CLIP_RADIUS * heldoutRadius(i));
    nodes.heldout[i].style.transform = `translate(${px}px, ${py}px)`;
    nodes.heldout[i].setAttribute("visibility", clip.classified ? "visible" : "hidden");
    colourFrame(nodes.heldout[i].firstChild, heldout.predictions[i], heldout.image_labels[i]);
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
  $("clip-heldout").textContent = clip.classified && heldout.accuracy !== null
    ? `${(100 * heldout.accuracy).toFixed(0)}% of ${heldout.count} images it never trained on`
    : "\u2013 (press Classify)";
  $("clip-temperature").textContent =
    `${fmt(state.temperature, 3)} (learned; logits are cosines \u00d7 ${fmt(1 / state.temperature, 2)})`;
}

function starPath(outer, inner) {
  const corners = [];
  for (let k = 0; k < 10; k++) {
    const r = k % 2 ? inner : outer;
    const a = -Math.PI / 2 + (k * Math.PI) / 5;
    corners.push(`${(r * Math.cos(a)).toFixed(2)} ${(r * Math.sin(a)).toFixed(2)}`);
  }
  return `M ${corners.join(" L ")} Z`;
}

function showTyped() {
  const answer = clip.typed;
  const node = clip.nodes && clip.nodes.typed;
  if (!node) return;
  node.setAttribute("visibility", answer ? "visible" : "hidden");
  if (!answer) {
    $("prompt-result").textContent = "\u00a0";
    return;
  }
  const [px, py] = toPx(unit(Math.atan2(answer.xy[1], answer.xy[0])), CLIP_RADIUS * 0.92);
  node.style.transform = `translate(${px}px, ${py}px)`;
  node.lastChild.textContent = answer.text.length > 24 ? `${answer.text.slice(0, 23)}\u2026` : answer.text;
  const nearest = clip.state.labels[answer.nearest_prompt];
  const cosines = clip.state.labels
    .map((label, c) => `${label} ${fmt(answer.prompt_similarity[c], 2)}`).join(", ");
  const unknown = answer.unknown_words.length
    ? ` Unknown to the model (read as <unk>): ${answer.unknown_words.join(", ")}.` : "";
  const result = $("prompt-result");
  result.textContent =
    `\u201c${answer.text}\u201d lands nearest \u201c${nearest}\u201d (cosine to each prompt: ` +
    `${cosines}).${unknown}`;
  result.dataset.nearest = nearest;
}

async function placePrompt() {
  const text = $("prompt-text").value;
  try {
    const answer = await clipCall("POST", "/prompt", { text });
    if (!answer) return;
    clip.typed = answer;
    showTyped();
    showError("clip-error", null);
  } catch (err) {
    showError("clip-error", err);
  }
}

async function replaceTyped() {
  // the text tower moved: place the typed prompt again
  if (clip.typed) await placePrompt();
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
  clip.heldoutThumbnails = answer.state.heldout_thumbnails;
  clip.typed = null;
  clip.state = answer.state;
  clip.classified = false;
  buildClipScene();
  placeClip();
  showTyped();
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
  await replaceTyped();
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
        await replaceTyped();
      }
    } catch (err) {
      showError("clip-error", err);
    }
  });
  $("prompt-form").addEventListener("submit", (event) => {
    event.preventDefault();
    placePrompt();
  });
  try {
    await newClipSession();
  } catch (err) {
    showError("clip-error", err);
  }
}
