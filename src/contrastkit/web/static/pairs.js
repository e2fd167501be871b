// Panel 1: augmentation pairs seen by the untrained and the trained encoder, on h and on z.
import { $, api, fmt, showError } from "./common.js";

const pairs = {
  current: null, encoder: "untrained", trained: "unknown", averages: null, averagesAsked: 0,
};

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
  for (const [id, values] of [["pair-similarity", pair.similarity],
    ["pair-similarity-z", pair.similarity_z]]) {
    const value = values[pairs.encoder];
    $(id).textContent = value === null || value === undefined ? trainedWord() : fmt(value);
    $(id).dataset.kind = pair.kind;
  }
}

function trainedWord() {
  // what to show where the trained encoder has no number (yet)
  if (pairs.trained === "ready") return "measuring\u2026";
  if (pairs.trained === "failed" || pairs.trained === "unavailable") return "unavailable";
  return "training\u2026";
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

function fillRow(id, stats, suffix) {
  const cells = $(id).querySelectorAll("td");
  if (!stats) {
    cells[1].textContent = trainedWord();
    cells[2].textContent = cells[3].textContent = "";
    return;
  }
  const [pos, neg] = [stats[`positive${suffix}`], stats[`negative${suffix}`]];
  cells[1].textContent = fmt(pos);
  cells[2].textContent = fmt(neg);
  cells[3].textContent = fmt(pos - neg);
}

function renderAverages() {
  const data = pairs.averages;
  if (data) {
    $("averages-caption").textContent = `Mean cosine similarity over ${data.pairs} sampled ` +
      `positive and ${data.pairs} negative pairs, on h and on z`;
  }
  for (const name of ["untrained", "trained"]) {
    const stats = data ? data[name] : null;
    fillRow(`avg-${name}`, stats, "");
    fillRow(`avg-${name}-z`, stats, "_z");
  }
}

async function refreshAverages() {
  // answers can arrive out of order (the first one computes the untrained averages, slowly):
  // only the latest request may change the table, or an old answer without the trained
  // encoder would bring "training..." back after it is ready
  const asked = ++pairs.averagesAsked;
  try {
    const data = await api("GET", "/api/pairs/averages");
    if (asked !== pairs.averagesAsked) return;
    pairs.averages = data;
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
  pairs.trained = status.status;
  if (status.status === "training" || status.status === "starting") {
    renderAverages();
    setTimeout(pollEncoder, 1500);
    return;
  }
  if (status.status === "ready") {
    if (!pairs.averages || !pairs.averages.trained) {
      renderAverages(); // "measuring..." while the averages are computed
      await refreshAverages();
      if (!pairs.averages || !pairs.averages.trained) setTimeout(pollEncoder, 1500);
    }
    if (pairs.current && pairs.current.similarity.trained === null) {
      await newPair(pairs.current.kind, pairs.current.seed);
    }
    return;
  }
  renderAverages();
  renderPair();
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
