"""The study's report: a fixed-width terminal table, ``report.md`` and a self-contained
``report.html`` (PNG plots embedded as base64 data URIs). Every number is formatted here, from
``results.json`` alone, so a report is reproducible from saved results."""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

from stridelab.study.erf import PLOT_NAME as ERF_PLOT
from stridelab.study.erf import PLOT_TITLE as ERF_TITLE
from stridelab.study.erf import effective_fields_png
from stridelab.study.erf import html_section as erf_html_section
from stridelab.study.erf import markdown_lines as erf_markdown_lines
from stridelab.study.results import METRIC_UNITS
from stridelab.study.runs import atomic_write_bytes, atomic_write_text

COLUMNS = ("variant", "top-1 %", "consistency %", "params", "MACs", "act. mem", "RF",
           "eff. stride", "latency ms", "img/s b64", "train mem", "train s")
PLOT_TITLES = {
    "accuracy_vs_macs.png": "Accuracy vs MACs (Pareto front marked)",
    "consistency_vs_stride.png": "Shift-consistency vs effective stride",
    "latency.png": "Latency per variant (batch 1)",
    "feature_maps.png": "Feature-map sizes per stage",
    ERF_PLOT: ERF_TITLE,
}


def _si(value: float) -> str:
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return f"{value / limit:.2f} {suffix}"
    return f"{value:.0f}"


def _bytes(value: float) -> str:
    for limit, suffix in ((2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
        if abs(value) >= limit:
            return f"{value / limit:.2f} {suffix}"
    return f"{value:.0f} B"


def _pm(stat: dict[str, float], scale: float = 1.0, digits: int = 1) -> str:
    if stat["n"] > 1:
        return f"{stat['mean'] * scale:.{digits}f} ± {stat['std'] * scale:.{digits}f}"
    return f"{stat['mean'] * scale:.{digits}f}"


def _per_axis(values: list[float | int]) -> str:
    text = [f"{v:g}" for v in values]
    return text[0] if len(set(text)) == 1 else "x".join(text)


def table_rows(results: dict[str, Any]) -> list[tuple[str, ...]]:
    """One row of formatted cells per variant (in results order); '*' marks the Pareto front."""
    rows: list[tuple[str, ...]] = []
    for variant in results["variants"]:
        s, st = variant["summary"], variant["static"]
        name = variant["name"] + (" *" if variant.get("pareto") else "")
        mark = " !" if st.get("field_warning") else ""
        rows.append((
            name, _pm(s["test_accuracy"], 100), _pm(s["consistency"], 100),
            _si(st["params"]), _si(st["macs"]), _bytes(st["activation_bytes"]),
            _per_axis(st["receptive_field"]) + mark, _per_axis(st["effective_stride"]) + mark,
            _pm(s["latency_ms"], digits=2), _pm(s["throughput"], digits=0),
            _bytes(s["peak_train_bytes"]["mean"]), _pm(s["train_seconds"], digits=1),
        ))
    return rows


def format_table(results: dict[str, Any]) -> str:
    """Fixed-width plain-text table (the terminal summary); deterministic given ``results``."""
    rows = [COLUMNS, *table_rows(results)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]

    def line(row: tuple[str, ...]) -> str:
        cells = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:],
                                                                         strict=True)]
        return "  ".join(cells).rstrip()

    rule = "-" * len(line(rows[0]))
    body = [line(row) for row in rows[1:]]
    return "\n".join([line(rows[0]), rule, *body, rule, _footnote(results)]) + "\n"


def _footnote(results: dict[str, Any]) -> str:
    config = results["config"]
    warned = [v["name"] for v in results["variants"] if v["static"].get("field_warning")]
    warning = (f"\n! {', '.join(warned)}: stridelab.inspect's receptive field / stride disagree "
               "with the feature-map sizes (see results.json)." if warned else "")
    return (f"* Pareto front of accuracy vs MACs. mean ± std over {config['seeds']} seed(s); "
            f"{results['dataset']['name']}, {config['epochs']} epoch(s); MACs per image "
            "(FLOPs = 2 x MACs)." + warning)


def format_markdown_table(results: dict[str, Any]) -> str:
    """The same table as GitHub-flavoured Markdown."""
    head = "| " + " | ".join(COLUMNS) + " |"
    align = "|" + "|".join([":---"] + ["---:"] * (len(COLUMNS) - 1)) + "|"
    body = ["| " + " | ".join(row) + " |" for row in table_rows(results)]
    return "\n".join([head, align, *body]) + "\n"


def _setup_lines(results: dict[str, Any]) -> list[str]:
    config, data = results["config"], results["dataset"]
    return [
        f"- dataset: {data['name']} ({data['train']} train / {data['val']} validation / "
        f"{data['test']} test images, {data['in_channels']} channel(s), "
        f"{data['image_size'][0]}x{data['image_size'][1]})",
        f"- model: CIFAR-style ResNet-{config['depth']}, width {config['width']}; "
        f"{config['epochs']} epoch(s), {config['optimizer']} lr {config['lr']}, "
        f"batch {config['batch_size']}, cosine schedule",
        f"- seeds: {config['seeds']} (split seed {config['seed']}); device {results['device']}, "
        f"{results['world_size']} process(es)",
        f"- shift-consistency: two random shifts of up to ±{config['max_shift']} px per axis",
        f"- training memory: {results.get('memory_method', 'n/a')}",
    ]


def _variant_lines(results: dict[str, Any]) -> list[str]:
    lines = []
    for variant in results["variants"]:
        sizes = " -> ".join(f"{c}x{h}x{w}" for c, h, w in variant["feature_sizes"])
        lines.append(f"- **{variant['name']}** ({variant['source']}): downsample "
                     f"`{variant['plan'].get('downsample')}`, stage strides "
                     f"{[s.get('stride') for s in variant['plan'].get('stages', [])]}; "
                     f"feature maps {sizes}")
    return lines


def highlights(results: dict[str, Any]) -> list[str]:
    """One line per headline: who wins on accuracy, consistency, compute and latency."""
    variants = results["variants"]

    def best(metric: str, largest: bool = True) -> dict[str, Any]:
        ranked: list[dict[str, Any]] = sorted(
            variants, key=lambda v: v["summary"][metric]["mean"], reverse=largest)
        return ranked[0]

    accurate, consistent = best("test_accuracy"), best("consistency")
    fastest = best("latency_ms", largest=False)
    cheapest = min(variants, key=lambda v: v["static"]["macs"])
    return [
        f"most accurate: {accurate['name']} "
        f"({100 * accurate['summary']['test_accuracy']['mean']:.1f}%)",
        f"most shift-consistent: {consistent['name']} "
        f"({100 * consistent['summary']['consistency']['mean']:.1f}%)",
        f"least compute: {cheapest['name']} ({_si(cheapest['static']['macs'])} MACs, "
        f"{100 * cheapest['summary']['test_accuracy']['mean']:.1f}% accurate)",
        f"lowest latency: {fastest['name']} ({fastest['summary']['latency_ms']['mean']:.2f} ms)",
    ]


def _warned_note(results: dict[str, Any]) -> str:
    notes = [f"{v['name']}: {v['static']['field_warning']}" for v in results["variants"]
             if v["static"].get("field_warning")]
    return "".join(f" `!` {note}." for note in notes)


def render_markdown(results: dict[str, Any], plots: list[str]) -> str:
    parts = [f"# Stride study `{results['config']['name']}`", "", *_setup_lines(results), "",
             format_markdown_table(results),
             "`*` marks the Pareto front of accuracy vs MACs." + _warned_note(results), "",
             "## Highlights", "", *[f"- {line}" for line in highlights(results)], "", "## Variants", "",
             *_variant_lines(results), "", *erf_markdown_lines(results), "## Plots", ""]
    parts += [f"![{PLOT_TITLES.get(p, p)}]({p})" for p in plots]
    parts += ["", "## Units", ""] + [f"- `{k}`: {v}" for k, v in METRIC_UNITS.items()]
    return "\n".join(parts) + "\n"


def render_html(results: dict[str, Any], plot_dir: Path, plots: list[str]) -> str:
    """A single HTML file: the table, the setup, and every PNG inlined as a data URI."""
    esc = html.escape
    head = "".join(f"<th>{esc(c)}</th>" for c in COLUMNS)
    rows = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>"
                   for row in table_rows(results))
    images = []
    for name in plots:
        data = base64.b64encode((plot_dir / name).read_bytes()).decode("ascii")
        title = esc(PLOT_TITLES.get(name, name))
        images.append(f"<figure><img alt=\"{title}\" src=\"data:image/png;base64,{data}\">"
                      f"<figcaption>{title}</figcaption></figure>")
    setup = "".join(f"<li>{esc(line[2:])}</li>" for line in _setup_lines(results))
    headline = "".join(f"<li>{esc(line)}</li>" for line in highlights(results))
    variants = "".join(f"<li>{esc(line[2:].replace('**', ''))}</li>"
                       for line in _variant_lines(results))
    units = "".join(f"<li><code>{esc(k)}</code>: {esc(v)}</li>" for k, v in METRIC_UNITS.items())
    style = ("body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}"
             "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;"
             "text-align:right}td:first-child,th:first-child{text-align:left}"
             "figure{display:inline-block;margin:1em}img{max-width:560px}")
    return (f"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>Stride study "
            f"{esc(results['config']['name'])}</title><style>{style}</style></head><body>"
            f"<h1>Stride study <code>{esc(results['config']['name'])}</code></h1><ul>{setup}</ul>"
            f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
            f"<p>* marks the Pareto front of accuracy vs MACs.</p>"
            f"<h2>Highlights</h2><ul>{headline}</ul>{erf_html_section(results)}"
            f"<h2>Plots</h2>{''.join(images)}"
            f"<h2>Variants</h2><ul>{variants}</ul><h2>Units</h2><ul>{units}</ul></body></html>\n")


def write_report(results: dict[str, Any], run_dir: Path) -> dict[str, Path]:
    """Write the PNG plots, report.md and report.html into ``run_dir``; returns their paths."""
    from stridelab.study.plots import PLOTTERS

    plots = []
    for name, plotter in PLOTTERS.items():
        atomic_write_bytes(run_dir / name, plotter(results))
        plots.append(name)
    erf_png = effective_fields_png(results)
    if erf_png is not None:
        atomic_write_bytes(run_dir / ERF_PLOT, erf_png)
        plots.append(ERF_PLOT)
    markdown = run_dir / "report.md"
    page = run_dir / "report.html"
    atomic_write_text(markdown, render_markdown(results, plots))
    atomic_write_text(page, render_html(results, run_dir, plots))
    return {"markdown": markdown, "html": page, **{p: run_dir / p for p in plots}}
