// Shared helpers of the demo page: the JSON API client and drawing on the 420 x 420 SVG planes.
// The browser only draws and sends coordinates: every loss, gradient, similarity and training
// step is computed by the server with contrastkit.

const SVG_NS = "http://www.w3.org/2000/svg";
export const $ = (id) => document.getElementById(id);

export async function api(method, path, body) {
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

export function svgEl(name, attrs, parent) {
  const el = document.createElementNS(SVG_NS, name);
  for (const [key, value] of Object.entries(attrs)) el.setAttribute(key, value);
  if (parent) parent.appendChild(el);
  return el;
}

export function fmt(x, digits = 3) {
  return x === null || x === undefined ? "\u2013" : Number(x).toFixed(digits);
}

export function showError(id, err) {
  $(id).textContent = err ? String(err.message || err) : "";
}

// A plane of 420 x 420 px showing data coordinates in [-1.4, 1.4]^2, y up.
export const SIZE = 420;
export const CENTER = SIZE / 2;
export const RADIUS = 150; // pixels per data unit
export const toPx = ([x, y], radius = RADIUS) => [CENTER + radius * x, CENTER - radius * y];

export function drawGuides(svg, radius = RADIUS) {
  svgEl("line", { class: "axis", x1: 10, y1: CENTER, x2: SIZE - 10, y2: CENTER }, svg);
  svgEl("line", { class: "axis", x1: CENTER, y1: 10, x2: CENTER, y2: SIZE - 10 }, svg);
  svgEl("circle", { class: "circle-guide", cx: CENTER, cy: CENTER, r: radius }, svg);
}

export function addArrowMarkers(svg, colors) {
  const defs = svgEl("defs", {}, svg);
  for (const [name, color] of Object.entries(colors)) {
    const marker = svgEl("marker", {
      id: `head-${name}`, viewBox: "0 0 10 10", refX: 6, refY: 5,
      markerWidth: 4, markerHeight: 4, orient: "auto-start-reverse",
    }, defs);
    svgEl("path", { d: "M 0 0 L 10 5 L 0 10 z", fill: color }, marker);
  }
}

export const unit = (angle) => [Math.cos(angle), Math.sin(angle)];
