// The model page: /api/model (inspector table, totals, diagnostics, pyramid) and /api/unit (the
// receptive field of the unit nearest a clicked pixel). Positions arrive in input pixels from the
// server; this file only scales them to the screen.
import { api, axes, byTestId, el, showErrors } from "./common.js";

const DISPLAY_WIDTH = 544;   // screen pixels for the photo's width
const COLUMNS = [
  ["name", "Layer", "l"], ["op", "Op", "l"], ["output", "Output shape", "l"], ["window", "Window", "l"],
  ["stride", "Eff. stride", ""], ["rf_size", "RF size", ""], ["rf_pad", "RF pad", ""],
  ["macs", "MACs", ""], ["params", "Params", ""],
];
const NUMERIC = new Set(["macs", "params"]);

const state = { answer: null, sort: null, expanded: new Set(), photo: null, scale: 1, unit: null };
const banner = byTestId("model-error");
const formControls = [byTestId("model-spec"), byTestId("model-input")];

// ---- loading --------------------------------------------------------------------------------

async function loadModel() {
  const spec = byTestId("model-spec").value.trim();
  const input = byTestId("model-input").value.trim();
  byTestId("model-load").disabled = true;
  byTestId("model-load").textContent = "Inspecting…";
  try {
    const answer = await api("/api/model", { "model-spec": spec, input });
    showErrors(null, banner, formControls);
    state.answer = answer;
    state.expanded = new Set();
    state.sort = null;
    history.replaceState(null, "", `?${new URLSearchParams({ "model-spec": spec, input })}`);
    render();
    document.body.dataset.modelReadyMs = String(performance.now());
    await pickUnit(null);
  } catch (err) {
    showErrors(err, banner, formControls);
  } finally {
    byTestId("model-load").disabled = false;
    byTestId("model-load").textContent = "Inspect";
  }
}

function render() {
  const answer = state.answer;
  const totals = answer.totals;
  const field = answer.field;
  byTestId("model-totals").replaceChildren(
    chip("model", `${answer.model} (${answer.spec})`), chip("input", axes(answer.input_size)),
    chip("MACs", totals.macs_text), chip("params", totals.params_text),
    chip("activations", totals.activation_text), chip("output RF", axes(field.size)),
    chip("output stride", axes(field.stride)), chip("capture", answer.capture));
  fillLayers(answer);
  fillDepths(answer);
  drawTable();
  drawPyramid(answer.pyramid);
  drawDiagnostics(answer.diagnostics);
  byTestId("erf-toggle-box").hidden = !answer.effective_field;
  drawPhoto();
}

function chip(key, value) {
  return el("span", { class: "chip" }, `${key} `, el("b", { text: value }));
}

// ---- table: sortable, foldable by depth ------------------------------------------------------

function fillDepths(answer) {
  const select = byTestId("model-depth");
  const options = [];
  for (let d = 1; d <= answer.table.max_depth; d++) options.push(el("option", { value: String(d), text: String(d) }));
  options.push(el("option", { value: "all", text: "every layer" }));
  select.replaceChildren(...options);
  select.value = "1";
}

function rowsAt(depth) {
  return state.answer.table.rows[String(depth)] || [];
}

function children(row, depth) {
  if (depth >= state.answer.table.max_depth) return [];
  const kids = rowsAt(depth + 1).filter((r) => r.name.startsWith(`${row.name}.`) || r.name === row.name);
  return kids.length === 1 && kids[0].name === row.name ? [] : kids;
}

function visibleRows() {
  const choice = byTestId("model-depth").value;
  if (choice === "all") return rowsAt("all").map((row) => ({ row, depth: null, kids: 0 }));
  const out = [];
  const walk = (rows, depth) => {
    for (const row of rows) {
      const kids = children(row, depth);
      out.push({ row, depth, kids: kids.length });
      if (kids.length && state.expanded.has(`${depth}:${row.name}`)) walk(kids, depth + 1);
    }
  };
  walk(rowsAt(Number(choice)), Number(choice));
  return out;
}

function sortRows(items) {
  if (!state.sort) return items;
  const { key, dir } = state.sort;
  const compare = NUMERIC.has(key)
    ? (a, b) => a.row[key] - b.row[key]
    : (a, b) => String(a.row[key]).localeCompare(String(b.row[key]), undefined, { numeric: true });
  return [...items].sort((a, b) => dir * compare(a, b));
}

function drawTable() {
  const table = byTestId("model-table");
  const head = el("tr", {}, COLUMNS.map(([key, title, align]) => {
    const arrow = state.sort && state.sort.key === key ? (state.sort.dir > 0 ? "▲" : "▼") : "";
    return el("th", { class: `sortable ${align}`, "data-key": key, onclick: () => sortBy(key) },
              title, el("span", { class: "arrow", text: arrow }));
  }));
  const units = new Set(state.answer.unit_layers.map((u) => u.name));
  const items = sortRows(visibleRows());
  const body = items.map(({ row, depth, kids }) => {
    const open = state.expanded.has(`${depth}:${row.name}`);
    const indent = depth === null ? 0 : depth - Number(byTestId("model-depth").value);
    const name = el("td", { class: "l" }, el("span", { class: "toggle", text: kids ? (open ? "▾" : "▸") : "" }),
                    "\u2003".repeat(indent), row.name);
    const cells = [name, ...COLUMNS.slice(1).map(([key, , align]) => el("td", {
      class: align, text: key === "macs" ? row.macs_text : key === "params" ? row.params_text : row[key] }))];
    return el("tr", {
      class: kids || units.has(row.name) ? "clickable" : "", "data-name": row.name,
      onclick: () => {
        if (kids) { toggle(`${depth}:${row.name}`); return; }
        if (units.has(row.name)) { byTestId("model-layer").value = row.name; pickUnit(state.unit); }
      },
    }, cells);
  });
  table.replaceChildren(el("thead", {}, head), el("tbody", {}, body));
  byTestId("model-rows").textContent = `${items.length} rows`;
}

function sortBy(key) {
  if (!state.sort || state.sort.key !== key) state.sort = { key, dir: 1 };
  else if (state.sort.dir > 0) state.sort = { key, dir: -1 };
  else state.sort = null;
  drawTable();
}

function toggle(key) {
  if (state.expanded.has(key)) state.expanded.delete(key); else state.expanded.add(key);
  drawTable();
}

// ---- pyramid and diagnostics -----------------------------------------------------------------

function drawPyramid(stages) {
  const box = byTestId("pyramid");
  if (!stages.length) { box.replaceChildren(el("div", { class: "empty", text: "no 2-D feature maps" })); return; }
  const widest = Math.max(...stages.map((s) => s.width));
  box.replaceChildren(...stages.map((s) => {
    const bar = el("div", { class: "bar" });
    bar.style.width = `${(100 * s.width) / widest}%`;
    return el("div", { class: "pyrow" }, el("span", { class: "lab", text: s.label, title: s.label }),
              el("div", {}, bar), el("span", { class: "num", text: `${s.channels} x ${s.height}x${s.width}` }));
  }));
}

function drawDiagnostics(list) {
  const box = byTestId("diagnostics");
  if (!list.length) { box.replaceChildren(el("div", { class: "empty", text: "no findings" })); return; }
  box.replaceChildren(...list.map((d) => el("div", { class: `diag ${d.severity}` },
    el("div", { class: "code", text: `${d.severity} · ${d.code} · ${d.layer}` }),
    el("div", { text: d.message }), el("div", { class: "muted", text: `Fix: ${d.fix}` }))));
}

// ---- photo, unit picking ---------------------------------------------------------------------

function fillLayers(answer) {
  const select = byTestId("model-layer");
  select.replaceChildren(...answer.unit_layers.map((u) => el("option", {
    value: u.name, text: `${u.name} · ${axes(u.output)} units · RF ${axes(u.rf_size)} · stride ${axes(u.effective_stride)}` })));
  if (answer.default_layer) select.value = answer.default_layer;
}

function inputSide() {
  const [, height, width] = state.answer.input_size;
  return { height, width };
}

function drawPhoto() {
  if (!state.answer || !state.photo) return;
  const { height, width } = inputSide();
  const canvas = byTestId("photo-canvas");
  canvas.width = width;
  canvas.height = height;
  state.scale = DISPLAY_WIDTH / width;
  canvas.style.width = `${width * state.scale}px`;
  canvas.style.height = `${height * state.scale}px`;
  const image = state.photo;
  const cover = Math.max(width / image.width, height / image.height);
  const sw = width / cover;
  const sh = height / cover;
  const ctx = canvas.getContext("2d");
  ctx.drawImage(image, (image.width - sw) / 2, (image.height - sh) / 2, sw, sh, 0, 0, width, height);
}

function place(node, box) {
  const s = state.scale;
  node.style.left = `${box.left * s}px`;
  node.style.top = `${box.top * s}px`;
  node.style.width = `${box.width * s}px`;
  node.style.height = `${box.height * s}px`;
}

async function pickUnit(point) {
  if (!state.answer) return;
  const layer = byTestId("model-layer").value;
  const { height, width } = inputSide();
  const where = point || { x: width / 2, y: height / 2 };
  try {
    const unit = await api("/api/unit", { "model-spec": state.answer.spec, input: axes(state.answer.input_size),
                                          layer, x: String(where.x), y: String(where.y) });
    document.getElementById("err-layer").textContent = "";
    state.unit = where;
    drawUnit(unit);
    if (byTestId("erf-toggle").checked) drawHeat(unit);
  } catch (err) {
    document.getElementById("err-layer").textContent = err.message;
  }
}

function drawUnit(unit) {
  const photo = byTestId("photo");
  const box = byTestId("rf-box");
  place(box, unit.box);
  box.hidden = false;
  box.dataset.unit = unit.unit.join(",");
  box.dataset.start = unit.start.join(",");
  box.dataset.end = unit.end.join(",");
  box.dataset.layer = unit.layer;
  const extent = byTestId("rf-extent");
  place(extent, unit.extent);
  extent.hidden = !unit.clipped;
  for (const dot of photo.querySelectorAll(".dot")) dot.remove();
  const s = state.scale;
  for (const n of unit.neighbours) {
    const selected = n.unit[0] === unit.unit[0] && n.unit[1] === unit.unit[1];
    const dot = el("div", { class: selected ? "dot sel" : "dot", "data-testid": selected ? "rf-center" : "rf-neighbour",
                            title: `unit (${n.unit.join(", ")}), centre (${n.center.join(", ")})` });
    dot.style.left = `${n.pixel[1] * s}px`;
    dot.style.top = `${n.pixel[0] * s}px`;
    photo.append(dot);
  }
  byTestId("unit-info").replaceChildren(
    el("div", {}, el("b", { text: `${unit.layer}` }), ` unit (${unit.unit.join(", ")}) of ${axes(unit.output_size)}`),
    el("div", { text: `sees rows ${unit.start[0]}..${unit.end[0]}, columns ${unit.start[1]}..${unit.end[1]} (inclusive${unit.clipped ? ", partly padding" : ""})` }),
    el("div", { text: `centre (${unit.center.join(", ")}) · field ${axes(unit.field.size)} · stride ${axes(unit.field.stride)} · dots: neighbouring units` }));
}

async function drawHeat(unit) {
  const heat = byTestId("erf-heat");
  try {
    const erf = await api("/api/erf", { "model-spec": state.answer.spec, input: axes(state.answer.input_size),
                                        layer: unit.layer, row: String(unit.unit[0]), col: String(unit.unit[1]) });
    if (!erf.available) { heat.hidden = true; return; }
    const rows = erf.map.length;
    const cols = erf.map[0].length;
    heat.width = cols;
    heat.height = rows;
    heat.style.width = `${cols * state.scale}px`;
    heat.style.height = `${rows * state.scale}px`;
    const top = Math.max(...erf.map.map((r) => Math.max(...r))) || 1;
    const ctx = heat.getContext("2d");
    const image = ctx.createImageData(cols, rows);
    erf.map.forEach((row, r) => row.forEach((v, c) => {
      const at = 4 * (r * cols + c);
      image.data.set([255, 60, 0, 255 * Math.sqrt(v / top)], at);
    }));
    ctx.putImageData(image, 0, 0);
    heat.hidden = false;
  } catch (err) {
    heat.hidden = true;
    document.getElementById("err-layer").textContent = err.message;
  }
}

function usePhoto(source) {
  const image = new Image();
  image.onload = () => { state.photo = image; drawPhoto(); if (state.answer) pickUnit(state.unit); };
  image.src = source;
}

function wire() {
  const photo = byTestId("photo");
  photo.addEventListener("click", (event) => {
    const rect = byTestId("photo-canvas").getBoundingClientRect();
    pickUnit({ x: (event.clientX - rect.left) / state.scale, y: (event.clientY - rect.top) / state.scale });
  });
  photo.addEventListener("dragover", (event) => { event.preventDefault(); photo.classList.add("dragover"); });
  photo.addEventListener("dragleave", () => photo.classList.remove("dragover"));
  photo.addEventListener("drop", (event) => {
    event.preventDefault();
    photo.classList.remove("dragover");
    const file = event.dataTransfer.files[0];
    if (file && file.type.startsWith("image/")) usePhoto(URL.createObjectURL(file));
  });
  byTestId("photo-file").addEventListener("change", (event) => {
    const file = event.target.files[0];
    if (file) usePhoto(URL.createObjectURL(file));
  });
  byTestId("model-layer").addEventListener("change", () => pickUnit(state.unit));
  byTestId("model-depth").addEventListener("change", () => { state.expanded = new Set(); drawTable(); });
  byTestId("erf-toggle").addEventListener("change", () => pickUnit(state.unit));
  document.getElementById("model-form").addEventListener("submit", (event) => { event.preventDefault(); loadModel(); });
}

async function start() {
  wire();
  usePhoto("/api/photo.jpg");
  const params = new URLSearchParams(location.search);
  const names = await api("/api/models");
  document.getElementById("model-names").replaceChildren(...names.names.map((n) => el("option", { value: n })));
  byTestId("model-spec").value = params.get("model-spec") || names.default;
  if (params.get("input")) byTestId("model-input").value = params.get("input");
  await loadModel();
}

start();
