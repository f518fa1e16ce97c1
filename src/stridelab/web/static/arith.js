// The arithmetic page: controls -> /api/layer and /api/chain -> readouts, grid, animation, code.
// Nothing here computes a size, a padding or a field: the server's stridelab.arith does.
import { api, axes, byTestId, el, showErrors } from "./common.js";

const LAYER_CONTROLS = ["input-size", "mode", "kernel", "stride", "dilation", "output-padding",
                        "padding", "ceil"];
const CHAIN_CONTROLS = ["chain-input", "layers"];
const controls = LAYER_CONTROLS.map((id) => byTestId(id));
const chainControls = CHAIN_CONTROLS.map((id) => byTestId(id));
const banner = byTestId("error");
const chainBanner = byTestId("chain-error");
const PLAY_MS = 650;

const view = { answer: null, step: 0, timer: null, inputCells: new Map(), outputCells: new Map() };
let layerRequest = null;
let chainRequest = null;

function value(id) {
  const control = byTestId(id);
  return control.type === "checkbox" ? (control.checked ? "1" : "0") : control.value;
}

function layerQuery() {
  const mode = value("mode");
  const query = {};
  for (const id of LAYER_CONTROLS) query[id] = value(id);
  if (mode !== "transposed") query["output-padding"] = "0";
  if (mode !== "pool") query.ceil = "0";
  return query;
}

function chainQuery() {
  return { "chain-input": value("chain-input"), layers: value("layers") };
}

function syncModeFields() {
  const mode = value("mode");
  document.getElementById("op-field").classList.toggle("disabled", mode !== "transposed");
  byTestId("output-padding").disabled = mode !== "transposed";
  document.getElementById("ceil-field").classList.toggle("disabled", mode !== "pool");
  byTestId("ceil").disabled = mode !== "pool";
}

function rememberInUrl() {
  const params = new URLSearchParams({ ...layerQuery(), ...chainQuery() });
  history.replaceState(null, "", `?${params}`);
}

function restoreFromUrl() {
  const params = new URLSearchParams(location.search);
  for (const id of [...LAYER_CONTROLS, ...CHAIN_CONTROLS]) {
    if (!params.has(id)) continue;
    const control = byTestId(id);
    if (control.type === "checkbox") control.checked = params.get(id) === "1";
    else control.value = params.get(id);
  }
}

// ---- readouts -------------------------------------------------------------------------------

function pairsText(pairs) {
  return pairs.map(([before, after]) => (before === after ? `${before}` : `${before},${after}`)).join(" x ");
}

function setReadouts(answer) {
  const set = (id, text) => { byTestId(id).textContent = text; };
  if (!answer) {
    for (const id of ["output-size", "padding-pairs", "dropped", "unread", "field"]) set(id, "–");
    byTestId("formula").textContent = "";
    return;
  }
  set("output-size", axes(answer.output_size));
  set("padding-pairs", pairsText(answer.padding));
  set("dropped", axes(answer.dropped));
  set("unread", axes(answer.unread.map((list) => list.length)));
  set("field", axes(answer.receptive_field.size));
  document.getElementById("dropped-box").classList.toggle("alert", answer.dropped.some((d) => d > 0));
  byTestId("formula").textContent = answer.formula;
  for (const pane of ["pytorch", "stridelab", "keras", "onnx"]) {
    byTestId(`code-${pane}`).textContent = answer.code[pane];
  }
}

// ---- grid and animation ---------------------------------------------------------------------

function cellSize(columns) {
  if (columns <= 10) return 34;
  if (columns <= 16) return 28;
  if (columns <= 24) return 22;
  if (columns <= 34) return 17;
  return 13;
}

function keySet(cells) {
  return new Set(cells.map(([r, c]) => `${r},${c}`));
}

function buildGrid(container, rows, cols, classify, label) {
  container.replaceChildren();
  const cells = new Map();
  const ncols = cols[1] - cols[0];
  container.style.setProperty("--cell", `${cellSize(ncols)}px`);
  container.style.gridTemplateColumns = `repeat(${ncols}, var(--cell))`;
  for (let r = rows[0]; r < rows[1]; r++) {
    for (let c = cols[0]; c < cols[1]; c++) {
      const [kind, title] = classify(r, c);
      const cell = el("div", { class: `cell ${kind}`, title, "data-cell": `${r},${c}` }, label(r, c, kind));
      cells.set(`${r},${c}`, cell);
      container.append(cell);
    }
  }
  return cells;
}

function drawGrid(answer) {
  const grid = answer.grid;
  const inputBox = byTestId("input-grid");
  const outputBox = byTestId("output-grid");
  byTestId("grid-note").textContent = answer.grid_note || "";
  if (!grid) {
    inputBox.replaceChildren();
    outputBox.replaceChildren();
    view.inputCells = new Map();
    view.outputCells = new Map();
    return;
  }
  const oneD = answer.ndim === 1;
  const pad = keySet(grid.input_padding);
  const hang = keySet(grid.input_hanging);
  const dropped = keySet(grid.dropped);
  const unread = keySet(grid.unread);
  const cropped = keySet(grid.output_cropped);
  const unwritten = keySet(grid.unwritten);
  const where = (r, c) => (oneD ? `${c}` : `(${r}, ${c})`);
  view.inputCells = buildGrid(inputBox, grid.input_rows, grid.input_cols, (r, c) => {
    const key = `${r},${c}`;
    if (hang.has(key)) return ["hang", `${where(r, c)}: past the padding (ceil mode's last window)`];
    if (pad.has(key)) return ["pad", `${where(r, c)}: padding`];
    if (dropped.has(key)) return ["dropped", `${where(r, c)}: dropped, no window reaches it`];
    if (unread.has(key)) return ["unread", `${where(r, c)}: never read (between taps)`];
    return ["", `input ${where(r, c)}`];
  }, (r, c, kind) => (oneD && !kind.startsWith("pad") && kind !== "hang" ? String(c) : ""));
  view.outputCells = buildGrid(outputBox, grid.output_rows, grid.output_cols, (r, c) => {
    const key = `${r},${c}`;
    if (cropped.has(key)) return ["ghost", `${where(r, c)}: written, then cropped by padding`];
    if (unwritten.has(key)) return ["unwritten out", `output ${where(r, c)}: no input writes it`];
    return ["out", `output ${where(r, c)}`];
  }, (r, c, kind) => (oneD && kind === "out" ? String(c) : ""));
  const transposed = answer.mode === "transposed";
  document.getElementById("input-title").textContent = transposed ? "input" : "input (with padding)";
  document.getElementById("output-title").textContent = transposed
    ? "output (dashed: cropped by padding)" : "output";
}

function frameCount() {
  return view.answer && view.answer.grid ? view.answer.grid.frames.length : 0;
}

function showStep(step) {
  const frames = view.answer && view.answer.grid ? view.answer.grid.frames : [];
  const scrub = byTestId("scrub");
  scrub.max = String(Math.max(frames.length - 1, 0));
  if (!frames.length) {
    byTestId("frame").textContent = "";
    return;
  }
  view.step = Math.min(Math.max(step, 0), frames.length - 1);
  scrub.value = String(view.step);
  for (const cell of view.inputCells.values()) cell.classList.remove("tap", "write");
  for (const cell of view.outputCells.values()) cell.classList.remove("tap", "write", "done");
  for (let i = 0; i < view.step; i++) {
    for (const [r, c] of frames[i].output) view.outputCells.get(`${r},${c}`)?.classList.add("done");
  }
  const frame = frames[view.step];
  const transposed = view.answer.mode === "transposed";
  for (const [r, c] of frame.input) {
    view.inputCells.get(`${r},${c}`)?.classList.add(transposed ? "write" : "tap");
  }
  for (const [r, c] of frame.output) {
    view.outputCells.get(`${r},${c}`)?.classList.add(transposed ? "tap" : "write");
  }
  const cell = transposed ? frame.input[0] : frame.output[0];
  const where = view.answer.ndim === 1 ? `${cell[1]}` : `(${cell[0]}, ${cell[1]})`;
  const what = transposed ? `input ${where} scatters` : `output ${where}`;
  byTestId("frame").textContent = `step ${view.step + 1} / ${frames.length} · ${what}`;
}

function stopPlaying() {
  if (view.timer !== null) clearInterval(view.timer);
  view.timer = null;
  byTestId("play").innerHTML = "&#9654; play";
}

function togglePlay() {
  if (view.timer !== null) { stopPlaying(); return; }
  if (!frameCount()) return;
  if (view.step >= frameCount() - 1) showStep(0);
  byTestId("play").innerHTML = "&#10074;&#10074; pause";
  view.timer = setInterval(() => {
    if (view.step >= frameCount() - 1) { stopPlaying(); return; }
    showStep(view.step + 1);
  }, PLAY_MS);
}

// ---- requests -------------------------------------------------------------------------------

async function updateLayer() {
  syncModeFields();
  if (layerRequest) layerRequest.abort();
  layerRequest = new AbortController();
  try {
    const answer = await api("/api/layer", layerQuery(), layerRequest.signal);
    showErrors(null, banner, controls);
    view.answer = answer;
    setReadouts(answer);
    drawGrid(answer);
    stopPlaying();
    showStep(0);
    rememberInUrl();
  } catch (err) {
    if (err.name === "AbortError") return;
    view.answer = null;
    setReadouts(null);
    drawGrid({ grid: null, grid_note: "" });
    showStep(0);
    showErrors(err, banner, controls);
  }
}

function chainTable(answer) {
  const table = byTestId("chain-table");
  const head = el("tr", {}, ["layer", "in", "out", "padding (b,a)", "dropped", "RF",
                             "eff. stride", "eff. pad"].map((h) => el("th", { text: h })));
  const rows = answer.layers.map((row) => el("tr", {
    class: `clickable${row.dropped.some((d) => d > 0) ? " warn" : ""}`,
    title: "open this layer above",
    onclick: () => openLayer(row.controls),
  }, [row.name, axes(row.input), axes(row.output), pairsText(row.padding), axes(row.dropped),
      axes(row.receptive_field), axes(row.effective_stride), axes(row.effective_padding)]
    .map((text) => el("td", { text }))));
  table.replaceChildren(el("thead", {}, head), el("tbody", {}, rows));
}

async function updateChain() {
  if (chainRequest) chainRequest.abort();
  chainRequest = new AbortController();
  try {
    const answer = await api("/api/chain", chainQuery(), chainRequest.signal);
    showErrors(null, chainBanner, chainControls);
    chainTable(answer);
    rememberInUrl();
  } catch (err) {
    if (err.name === "AbortError") return;
    byTestId("chain-table").replaceChildren();
    showErrors(err, chainBanner, chainControls);
  }
}

function openLayer(values) {
  for (const [id, text] of Object.entries(values)) {
    const control = byTestId(id);
    if (!control) continue;
    if (control.type === "checkbox") control.checked = text === "1";
    else control.value = text;
  }
  updateLayer();
  window.scrollTo({ top: 0, behavior: "smooth" });
}

// ---- wiring ---------------------------------------------------------------------------------

function selectTab(name) {
  for (const tab of document.querySelectorAll(".tabs [data-tab]")) {
    tab.setAttribute("aria-selected", String(tab.dataset.tab === name));
  }
  for (const pane of document.querySelectorAll("pre[data-pane]")) pane.hidden = pane.dataset.pane !== name;
}

function wire() {
  restoreFromUrl();
  for (const control of controls) {
    control.addEventListener(control.tagName === "SELECT" || control.type === "checkbox" ? "change" : "input", updateLayer);
  }
  for (const control of chainControls) control.addEventListener("input", updateChain);
  byTestId("step").addEventListener("click", () => { stopPlaying(); showStep(view.step + 1); });
  byTestId("step-back").addEventListener("click", () => { stopPlaying(); showStep(view.step - 1); });
  byTestId("play").addEventListener("click", togglePlay);
  byTestId("scrub").addEventListener("input", (event) => { stopPlaying(); showStep(Number(event.target.value)); });
  for (const tab of document.querySelectorAll(".tabs [data-tab]")) {
    tab.addEventListener("click", () => selectTab(tab.dataset.tab));
  }
  byTestId("copy-code").addEventListener("click", async () => {
    const pane = document.querySelector("pre[data-pane]:not([hidden])");
    try { await navigator.clipboard.writeText(pane.textContent); byTestId("copy-code").textContent = "copied"; }
    catch { byTestId("copy-code").textContent = "select and copy"; }
    setTimeout(() => { byTestId("copy-code").textContent = "copy"; }, 1500);
  });
  document.addEventListener("keydown", (event) => {
    if (event.target.matches("input, select, textarea")) return;
    if (event.key === "ArrowRight") { stopPlaying(); showStep(view.step + 1); }
    if (event.key === "ArrowLeft") { stopPlaying(); showStep(view.step - 1); }
    if (event.key === " ") { event.preventDefault(); togglePlay(); }
  });
  updateLayer();
  updateChain();
}

wire();
