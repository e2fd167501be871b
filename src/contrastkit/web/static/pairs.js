// Panel 1: augmentation pairs seen by the untrained and the trained encoder.
import { $, api, fmt, showError } from "./common.js";

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

export function initPairs() {
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
