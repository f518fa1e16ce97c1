"""``Report.plot(path)``: receptive-field size and feature-map size per layer (matplotlib, Agg)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from stridelab.inspect.records import Report


def plot_report(report: Report, path: Path) -> Path:
    """Write a two-panel PNG (log scale, first spatial axis; dashed line = input size).

    The file is written to a temporary name and moved into place, so an existing plot is never
    left half-written.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    if path.suffix.lower() != ".png":
        raise ValueError(f"plot path must end in .png, got {str(path)!r}")
    layers = [r for r in report.layers if r.spatial]
    if not layers:
        raise ValueError("the report has no spatial layers to plot")
    index = list(range(len(layers)))
    rf = [float(r.receptive_field.size[0]) for r in layers]
    stride = [float(r.effective_stride[0]) for r in layers]
    fmap = [r.output_shape[2] if len(r.output_shape) > 2 else 1 for r in layers]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(max(8, len(layers) * 0.12), 7), sharex=True)
    top.plot(index, rf, marker=".", label="receptive field size")
    top.plot(index, stride, marker=".", label="effective stride")
    top.axhline(report.input_size[1], linestyle="--", color="gray", label="input size")
    top.set_yscale("log")
    top.set_ylabel("input pixels (axis 0)")
    top.legend(loc="upper left")
    top.set_title(f"{report.model_name} on {'x'.join(map(str, report.input_size))}")
    bottom.step(index, fmap, where="post", label="feature-map size")
    bottom.set_yscale("log")
    bottom.set_ylabel("positions (axis 0)")
    bottom.set_xlabel("layer (execution order)")
    if len(layers) <= 40:
        bottom.set_xticks(index)
        bottom.set_xticklabels([r.name for r in layers], rotation=90, fontsize=7)
    bottom.legend(loc="upper right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(suffix=".png", dir=path.parent)
    os.close(handle)
    try:
        fig.savefig(temp, format="png", dpi=100)
        os.replace(temp, path)
    finally:
        plt.close(fig)
        if os.path.exists(temp):
            os.unlink(temp)
    return path
