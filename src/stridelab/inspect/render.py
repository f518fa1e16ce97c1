"""Text, JSON, CSV and Markdown renderings of a :class:`~stridelab.inspect.records.Report`.

The JSON schema (``"schema": "stridelab.inspect", "version": 2``) is documented in
``docs/inspect-json.md``. Fractions (strides and fields after upsampling) are written as
floats in JSON and as ``p/q`` in text, CSV and Markdown.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from stridelab.inspect.records import LayerRecord, Report

SCHEMA = "stridelab.inspect"
SCHEMA_VERSION = 2  # 2: "global_context" per layer and for the output
MACS_NOTE = "MACs = FLOPs / 2; FLOPs from torch.utils.flop_counter, bias adds not counted"
GLOBAL_MARK = "global"  # beside the RF size: units also read the whole input (global context)
COLUMNS = ("Layer", "Op", "Output shape", "Window", "Eff. stride", "RF size", "RF pad",
           "MACs", "Params")


def fmt(value: object) -> str:
    return str(value)


def axes(values: Sequence[object] | None, squeeze: bool = False) -> str:
    """``7x7`` (or ``7`` with ``squeeze`` when every axis agrees); fractions as ``1/2``."""
    if values is None:
        return ""
    items = [fmt(v) for v in values]
    if squeeze and len(set(items)) == 1:
        return items[0]
    return "x".join(items)


def padding_text(pairs: Sequence[tuple[int, int]] | None) -> str:
    if pairs is None:
        return ""
    if len(set(pairs)) == 1:
        before, after = pairs[0]
        return f"{before}" if before == after else f"{before}:{after}"
    return "x".join(f"{b}" if b == a else f"{b}:{a}" for b, a in pairs)


def window_text(record: LayerRecord) -> str:
    """``7x7/2 p3`` (kernel / stride, padding ``before:after`` when uneven, dilation ``d2``)."""
    if record.window == "global":
        return "global"
    if record.window == "pad" or record.kernel is None:
        return f"pad {padding_text(record.padding)}" if record.padding is not None else ""
    if record.window in ("resize", "transposed") and record.stride is not None:
        ups = axes([1 / s for s in record.stride], squeeze=True)
        text = f"up x{ups}" if record.window == "resize" else f"{axes(record.kernel)} up x{ups}"
        if record.window == "transposed" and any(p != (0, 0) for p in record.padding or ()):
            text += f" p{padding_text(record.padding)}"
        return text
    text = f"{axes(record.kernel)}/{axes(record.stride, squeeze=True)}"
    if record.padding is not None and any(p != (0, 0) for p in record.padding):
        text += f" p{padding_text(record.padding)}"
    if record.dilation is not None and any(d != 1 for d in record.dilation):
        text += f" d{axes(record.dilation, squeeze=True)}"
    return text


def human(count: int) -> str:
    """``1.82G`` style for tables (exact numbers are in JSON / CSV)."""
    for unit, scale in (("T", 10**12), ("G", 10**9), ("M", 10**6), ("K", 10**3)):
        if abs(count) >= scale:
            return f"{count / scale:.2f}{unit}"
    return str(count)


def human_bytes(count: int) -> str:
    for unit, scale in (("GB", 2**30), ("MB", 2**20), ("KB", 2**10)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count} B"


@dataclass(frozen=True)
class Row:
    name: str
    op: str
    output: str
    window: str
    stride: str
    size: str
    pad: str
    macs: int
    params: int


def rows(report: Report, depth: int | None = None) -> list[Row]:
    """Table rows; with ``depth`` consecutive layers sharing the first ``depth`` name parts are
    folded into one row (costs summed, shape and field of the last one)."""
    if depth is not None and depth < 1:
        raise ValueError(f"depth must be an int >= 1 (or None for every layer), got {depth}")
    runs: list[tuple[str, list[LayerRecord]]] = []
    for record in report.layers:
        key = record.name if depth is None else ".".join(record.name.split(".")[:depth])
        if runs and runs[-1][0] == key:
            runs[-1][1].append(record)
        else:
            runs.append((key, [record]))
    out = []
    for key, members in runs:
        last = members[-1]
        single = len(members) == 1
        field = last.receptive_field
        size = axes(field.size, squeeze=True)
        out.append(Row(
            name=key, op=last.op if single else f"{len(members)} ops",
            output=axes(last.output_shape), window=window_text(last) if single else "",
            stride=axes(field.stride, squeeze=True),
            size=f"{size} {GLOBAL_MARK}" if last.global_context else size,
            pad=axes(field.padding, squeeze=True),
            macs=sum(m.macs for m in members), params=sum(m.params for m in members),
        ))
    return out


def _cells(row: Row) -> list[str]:
    return [row.name, row.op, row.output, row.window, row.stride, row.size, row.pad,
            human(row.macs) if row.macs else "-", f"{row.params:,}" if row.params else "-"]


def summary_lines(report: Report) -> list[str]:
    field = report.field
    return [
        f"Input: {report.batch_size}x{axes(report.input_size)} on {report.device} "
        f"(capture: {report.capture})",
        f"Total MACs: {report.macs:,} ({MACS_NOTE})",
        f"Params: {report.params:,}   Activations: {human_bytes(report.activation_bytes)}",
        f"Output receptive field: size {axes(field.size)}, stride {axes(field.stride)}, "
        f"padding {axes(field.padding)}"
        + (" (+ global context: every unit reads the whole input)" if report.global_context
           else ""),
    ]


def rich_table(report: Report, depth: int | None = None) -> Any:
    """The per-layer table as a ``rich.table.Table`` (print it with a rich Console)."""
    from rich.table import Table

    table = Table(title=f"{report.model_name}: stride, receptive field, cost",
                  title_justify="left", show_lines=False)
    for index, column in enumerate(COLUMNS):
        table.add_column(column, justify="right" if index >= 4 else "left", no_wrap=True)
    for row in rows(report, depth):
        table.add_row(*_cells(row))
    return table


def table_text(report: Report, depth: int | None = None, width: int = 160) -> str:
    """The per-layer table rendered with rich (no colour), followed by totals."""
    from rich.console import Console

    table = rich_table(report, depth)
    console = Console(width=width, record=True, color_system=None, force_terminal=False,
                      file=io.StringIO())
    console.print(table)
    for line in summary_lines(report):
        console.print(line, highlight=False, soft_wrap=True)
    if report.diagnostics:
        counts = {s: sum(d.severity == s for d in report.diagnostics) for s in ("warning", "info")}
        console.print(f"Diagnostics: {counts['warning']} warning(s), {counts['info']} info "
                      f"(--diagnose / report.diagnostics)", highlight=False, soft_wrap=True)
    return console.export_text()


def _plain(value: Any) -> Any:
    if isinstance(value, Fraction):
        return float(value)
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return value


def layer_dict(record: LayerRecord) -> dict[str, Any]:
    return {
        "name": record.name, "op": record.op, "inputs": list(record.inputs),
        "input_shapes": _plain(record.input_shapes), "output_shape": _plain(record.output_shape),
        "kernel": _plain(record.kernel), "stride": _plain(record.stride),
        "padding": _plain(record.padding), "dilation": _plain(record.dilation),
        "effective_stride": _plain(record.effective_stride),
        "receptive_field": record.receptive_field.to_dict(),
        "center_offset": _plain(record.receptive_field.center_offset),
        "window": record.window, "spatial": record.spatial,
        "global_context": record.global_context, "macs": record.macs, "params": record.params,
        "activation_bytes": record.activation_bytes,
    }


def to_dict(report: Report) -> dict[str, Any]:
    return {
        "schema": SCHEMA, "version": SCHEMA_VERSION, "model": report.model_name,
        "input_size": list(report.input_size), "batch_size": report.batch_size,
        "device": report.device, "capture": report.capture,
        "conventions": {
            "macs": MACS_NOTE, "shapes": "include the batch axis",
            "padding": "[before, after] per spatial axis, in pixels of the layer's input",
            "receptive_field": "size, stride, padding per spatial axis in input pixels "
                               "(Distill 2019); unit u sees [u*stride - padding, "
                               "u*stride - padding + size - 1]",
            "fractions": "written as floats (strides after upsampling)",
            "global_context": "true when units also read the whole input through a global "
                              "operator (attention over the whole grid, global pooling, a "
                              "global gate); receptive_field is then the local field of the "
                              "main path",
        },
        "totals": {"macs": report.macs, "flops": report.flops, "params": report.params,
                   "activation_bytes": report.activation_bytes},
        "field": report.field.to_dict(), "global_context": report.global_context,
        "layers": [layer_dict(r) for r in report.layers],
        "diagnostics": [{"severity": d.severity, "code": d.code, "layer": d.layer,
                         "message": d.message, "fix": d.fix} for d in report.diagnostics],
    }


def to_json(report: Report, indent: int | None = 2) -> str:
    return json.dumps(to_dict(report), indent=indent) + "\n"


CSV_FIELDS = ("name", "op", "inputs", "input_shapes", "output_shape", "kernel", "stride",
              "padding", "dilation", "effective_stride", "rf_size", "rf_stride", "rf_padding",
              "macs", "params", "activation_bytes", "global_context")


def to_csv(report: Report) -> str:
    """One row per layer; per-axis values joined by ``x``, padding as ``before:after``."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_FIELDS)
    for r in report.layers:
        pads = "x".join(f"{b}:{a}" for b, a in r.padding) if r.padding is not None else ""
        writer.writerow([
            r.name, r.op, ";".join(r.inputs), ";".join(axes(s) for s in r.input_shapes),
            axes(r.output_shape), axes(r.kernel), axes(r.stride), pads, axes(r.dilation),
            axes(r.effective_stride), axes(r.receptive_field.size),
            axes(r.receptive_field.stride), axes(r.receptive_field.padding),
            r.macs, r.params, r.activation_bytes, int(r.global_context),
        ])
    return buffer.getvalue()


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def to_markdown(report: Report, depth: int | None = None, diagnostics: bool = True) -> str:
    lines = [f"## {report.model_name}: stride, receptive field, cost", "",
             "| " + " | ".join(COLUMNS) + " |",
             "|" + "|".join("---" if i < 4 else "---:" for i in range(len(COLUMNS))) + "|"]
    for row in rows(report, depth):
        lines.append("| " + " | ".join(_md_escape(c) for c in _cells(row)) + " |")
    lines.append("")
    lines += [f"- {line}" for line in summary_lines(report)]
    if diagnostics and report.diagnostics:
        lines += ["", "### Diagnostics", ""]
        for d in report.diagnostics:
            lines.append(f"- **{d.severity}** `{d.layer}` ({d.code}): {_md_escape(d.message)} "
                         f"*Fix:* {_md_escape(d.fix)}")
    return "\n".join(lines) + "\n"
