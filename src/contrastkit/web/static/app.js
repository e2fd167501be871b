// contrastkit demo page: wires up the three panels (plain ES modules, no build step).
import { initPairs } from "./pairs.js";
import { initLandscape } from "./landscape.js";
import { initClip } from "./clip.js";

initPairs();
initLandscape();
initClip();
