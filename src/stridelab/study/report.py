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
from stridelab.study.task_report import (
    CLAIM_COLUMNS,
    TASK_COLUMNS,
    claim_rows,
    claims_note,
    detail_lines,
    markdown_table,
    task_rows,
    task_title,
    text_table,
)

DEFAULT_RUN_NAME = "study"
SEP = "\x1f"  # joins a claim's measurements until they are escaped for HTML

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
        f"- model: {_model_text(results)}; "
        f"{config['epochs']} epoch(s), {config['optimizer']} lr {config['lr']}, "
        f"batch {config['batch_size']}, cosine schedule",
        f"- seeds: {config['seeds']} (split seed {config['seed']}); device {results['device']}, "
        f"{results['world_size']} process(es)",
        f"- shift-consistency: two random shifts of up to ±{config['max_shift']} px per axis",
        f"- training memory: {results.get('memory_method', 'n/a')}",
        *_scene_lines(results),
    ]


def _model_text(results: dict[str, Any]) -> str:
    config = results["config"]
    if is_scene_study(results):
        return (f"scene ResNet ({(config['depth'] - 2) // 6} block(s) in each of five stride-2 "
                f"stages, widths {config['width']}..{4 * config['width']}) with the task's head")
    return f"CIFAR-style ResNet-{config['depth']}, width {config['width']}"


def _scene_lines(results: dict[str, Any]) -> list[str]:
    stats = results["dataset"].get("scene_stats", {}).get("test")
    if not stats:
        return []
    buckets = ", ".join(f"{k} {v}" for k, v in stats["buckets"].items())
    low, high = stats["bucket_area_thresholds_px2"]
    return [f"- test objects: {stats['objects']} in {stats['images']} images ({buckets}; small "
            f"< {low:g} px², large >= {high:g} px² of box area)"]


def _variant_lines(results: dict[str, Any]) -> list[str]:
    lines = []
    for variant in results["variants"]:
        sizes = " -> ".join(f"{c}x{h}x{w}" for c, h, w in variant["feature_sizes"])
        task = variant.get("task", "classify")
        prefix = f"{task}: " if is_scene_study(results) else ""
        lines.append(f"- {prefix}**{variant['name']}** ({variant['source']}): downsample "
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


def report_title(results: dict[str, Any]) -> str:
    """"Stride study" for the default run name, "Stride study: NAME" otherwise."""
    name = results["config"]["name"]
    return "Stride study" if name == DEFAULT_RUN_NAME else f"Stride study: {name}"


def is_scene_study(results: dict[str, Any]) -> bool:
    return any(v.get("task", "classify") != "classify" or v.get("primary") not in
               (None, "test_accuracy") for v in results["variants"])


def format_summary(results: dict[str, Any]) -> str:
    """What the CLI prints: the claims (verdicts) and the table of every task."""
    parts = []
    if is_scene_study(results):
        for task in results.get("tasks", []):
            parts += [task_title(task, results), text_table(TASK_COLUMNS[task],
                                                            task_rows(results, task))]
        parts += [line + "\n" for line in detail_lines(results)]
    else:
        parts.append(format_table(results))
    claims = [f"- {claim}: {verdict}" for claim, _, verdict in claim_rows(results)]
    if claims:
        parts += ["claims (rule in the report):\n" + "\n".join(claims) + "\n"]
    return "\n".join(parts)


def _title_for(plot: str) -> str:
    from stridelab.study.scene_plots import PLOT_TITLES as SCENE_TITLES

    return PLOT_TITLES.get(plot, SCENE_TITLES.get(plot, plot))


def _claims_markdown(results: dict[str, Any]) -> list[str]:
    if not results.get("claims"):
        return []
    rows = claim_rows(results, separator="<br>")
    return ["## The claims, measured", "", markdown_table(CLAIM_COLUMNS, rows, left=3),
            claims_note(), ""]


def _scene_markdown(results: dict[str, Any], pictures: list[str]) -> list[str]:
    parts: list[str] = []
    for task in results.get("tasks", []):
        parts += [f"## {task_title(task, results)}", "",
                  markdown_table(TASK_COLUMNS[task], task_rows(results, task)),
                  "`*` Pareto front of the task's metric vs MACs; eff. field: effective receptive "
                  "field after training (95% extent, input pixels).", ""]
        parts += [f"![{_title_for(p)}]({p})" for p in pictures if p == f"pictures_{task}.png"]
        parts.append("")
    lines = detail_lines(results)
    if lines:
        parts += ["## Does detail drop as the output stride grows?", "",
                  *[f"- {line}" for line in lines], ""]
    return parts


def render_markdown(results: dict[str, Any], plots: list[str],
                    pictures: list[str] | None = None) -> str:
    pictures = pictures or []
    parts = [f"# {report_title(results)}", "", *_setup_lines(results), "",
             *_claims_markdown(results)]
    if is_scene_study(results):
        parts += _scene_markdown(results, pictures)
    else:
        parts += ["## Results", "", format_markdown_table(results),
                  "`*` marks the Pareto front of accuracy vs MACs." + _warned_note(results), "",
                  "## Highlights", "", *[f"- {line}" for line in highlights(results)], ""]
    parts += ["## Variants", "", *_variant_lines(results), "", *erf_markdown_lines(results),
              "## Plots", ""]
    parts += [f"![{_title_for(p)}]({p})" for p in plots]
    parts += ["", "## Units", ""] + [f"- `{k}`: {v}" for k, v in METRIC_UNITS.items()]
    return "\n".join(parts) + "\n"


def _html_table(columns: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    esc = html.escape
    head = "".join(f"<th>{esc(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _html_figure(plot_dir: Path, name: str) -> str:
    data = base64.b64encode((plot_dir / name).read_bytes()).decode("ascii")
    title = html.escape(_title_for(name))
    return (f"<figure><img alt=\"{title}\" src=\"data:image/png;base64,{data}\">"
            f"<figcaption>{title}</figcaption></figure>")


def render_html(results: dict[str, Any], plot_dir: Path, plots: list[str],
                pictures: list[str] | None = None) -> str:
    """A single HTML file: claims, tables, setup, and every PNG inlined as a data URI."""
    esc = html.escape
    pictures = pictures or []
    setup = "".join(f"<li>{esc(line[2:])}</li>" for line in _setup_lines(results))
    body = [f"<h1>{esc(report_title(results))}</h1><ul>{setup}</ul>"]
    if results.get("claims"):
        rows = "".join(
            f"<tr><td>{esc(claim)}</td><td>{'<br>'.join(esc(m) for m in measured.split(SEP))}"
            f"</td><td>{esc(verdict)}</td></tr>"
            for claim, measured, verdict in claim_rows(results, separator=SEP))
        head = "".join(f"<th>{esc(c)}</th>" for c in CLAIM_COLUMNS)
        body.append(f"<h2>The claims, measured</h2><table class=\"claims\"><thead><tr>{head}"
                    f"</tr></thead><tbody>{rows}</tbody></table><p>{esc(claims_note())}</p>")
    if is_scene_study(results):
        for task in results.get("tasks", []):
            body.append(f"<h2>{esc(task_title(task, results))}</h2>"
                        f"{_html_table(TASK_COLUMNS[task], task_rows(results, task))}"
                        "<p>* Pareto front of the task's metric vs MACs; eff. field: 95% extent of "
                        "the effective receptive field after training, input pixels.</p>")
            body += [_html_figure(plot_dir, p) for p in pictures if p == f"pictures_{task}.png"]
        lines = detail_lines(results)
        if lines:
            body.append("<h2>Does detail drop as the output stride grows?</h2><ul>"
                        + "".join(f"<li>{esc(line)}</li>" for line in lines) + "</ul>")
    else:
        headline = "".join(f"<li>{esc(line)}</li>" for line in highlights(results))
        body.append(f"<h2>Results</h2>{_html_table(COLUMNS, table_rows(results))}"
                    "<p>* marks the Pareto front of accuracy vs MACs.</p>"
                    f"<h2>Highlights</h2><ul>{headline}</ul>")
    body.append("<h2>Plots</h2>" + "".join(_html_figure(plot_dir, p) for p in plots))
    variants = "".join(f"<li>{esc(line[2:].replace('**', ''))}</li>"
                       for line in _variant_lines(results))
    units = "".join(f"<li><code>{esc(k)}</code>: {esc(v)}</li>" for k, v in METRIC_UNITS.items())
    body.append(erf_html_section(results))
    body.append(f"<h2>Variants</h2><ul>{variants}</ul><h2>Units</h2><ul>{units}</ul>")
    style = ("body{font-family:system-ui,sans-serif;margin:2em;max-width:1400px}"
             "table{border-collapse:collapse;margin-bottom:1em}td,th{border:1px solid #ccc;"
             "padding:4px 8px;text-align:right}td:first-child,th:first-child{text-align:left}"
             "figure{display:inline-block;margin:1em}img{max-width:680px}"
             "table.claims td{text-align:left;vertical-align:top}")
    return (f"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>"
            f"{esc(report_title(results))}</title><style>{style}</style></head><body>"
            f"{''.join(body)}</body></html>\n")


def write_report(results: dict[str, Any], run_dir: Path) -> dict[str, Path]:
    """Write the PNG plots, report.md and report.html into ``run_dir``; returns their paths.

    The prediction pictures named in ``results["pictures"]`` must already be in ``run_dir``."""
    from stridelab.study.plots import PLOTTERS
    from stridelab.study.scene_plots import scene_plotters

    plotters = scene_plotters(results) if is_scene_study(results) else PLOTTERS
    plots = []
    for name, plotter in plotters.items():
        atomic_write_bytes(run_dir / name, plotter(results))
        plots.append(name)
    erf_png = effective_fields_png(results)
    if erf_png is not None:
        atomic_write_bytes(run_dir / ERF_PLOT, erf_png)
        plots.append(ERF_PLOT)
    pictures = [p for p in results.get("pictures", []) if (run_dir / p).is_file()]
    markdown = run_dir / "report.md"
    page = run_dir / "report.html"
    atomic_write_text(markdown, render_markdown(results, plots, pictures))
    atomic_write_text(page, render_html(results, run_dir, plots, pictures))
    return {"markdown": markdown, "html": page, **{p: run_dir / p for p in plots}}
