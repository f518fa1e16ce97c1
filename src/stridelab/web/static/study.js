// The study page: /api/study lists the runs given with --runs; /api/study/<run> gives the report's
// own table rows (formatted by stridelab.study.report), highlights and plot files.
import { api, byTestId, el } from "./common.js";

const banner = byTestId("study-error");

async function showRun(name) {
  try {
    const run = await api(`/api/study/${encodeURIComponent(name)}`);
    banner.textContent = "";
    const head = el("tr", {}, run.columns.map((c) => el("th", { text: c })));
    const body = run.rows.map((row) => el("tr", {}, row.map((cell) => el("td", { text: cell }))));
    byTestId("study-table").replaceChildren(el("thead", {}, head), el("tbody", {}, body));
    byTestId("study-highlights").replaceChildren(...run.highlights.map((line) => el("li", { text: line })));
    const config = Object.entries(run.config).filter(([, v]) => v !== null);
    byTestId("study-config").replaceChildren(...config.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: String(v) })]));
    const data = run.dataset ? `${run.dataset.name}: ${run.dataset.train} train / ${run.dataset.test} test images` : "";
    byTestId("study-setup").textContent = data;
    byTestId("study-reports").replaceChildren(...run.reports.map((file) => el("a", {
      href: `/runs/${encodeURIComponent(name)}/${encodeURIComponent(file)}`, target: "_blank", text: file })));
    byTestId("study-plots").replaceChildren(...run.plots.map((plot) => el("figure", {},
      el("img", { src: `/runs/${encodeURIComponent(name)}/${encodeURIComponent(plot.file)}`, alt: plot.title }),
      el("figcaption", { text: plot.title }))));
  } catch (err) {
    banner.textContent = err.message;
  }
}

async function start() {
  const index = await api("/api/study");
  byTestId("study-root").textContent = index.root ? `runs from ${index.root}` : "";
  const select = byTestId("study-run");
  if (!index.runs.length) {
    banner.textContent = index.root
      ? `no study results (results.json) under ${index.root}`
      : "no runs folder: start with  stridelab explore --runs runs/<name>  (after stridelab study)";
    select.hidden = true;
    return;
  }
  select.replaceChildren(...index.runs.map((name) => el("option", { value: name, text: name })));
  const wanted = new URLSearchParams(location.search).get("run");
  if (wanted && index.runs.includes(wanted)) select.value = wanted;
  select.addEventListener("change", () => {
    history.replaceState(null, "", `?run=${encodeURIComponent(select.value)}`);
    showRun(select.value);
  });
  await showRun(select.value);
}

start();
