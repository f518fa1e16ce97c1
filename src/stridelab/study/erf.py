"""The effective receptive field of each study variant, at initialisation and after training.

Luo et al. (NeurIPS 2016) report that training widens the effective field while the theoretical
one stays fixed. The runner calls :func:`measure_effective_field` on the freshly built model and
on the trained one (same seed); :func:`effective_field_entry` stores both in the seed's
``result.json`` under ``"effective_field"``; the report shows them beside the theoretical field
(:func:`markdown_lines`, :func:`html_section`) and draws both maps per variant
(:func:`effective_fields_png`).

Measured on the last spatial layer's centre unit with the study's own test images (normalised
as in training): ``stridelab.effective_field(model, input_size, inputs=images)``. Quantities as
in :mod:`stridelab.inspect.erf`: ``extent95`` (width holding 95% of the gradient mass), ``std``
and ``ratio95`` (extent / theoretical size), per axis in input pixels.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

PLOT_NAME = "effective_fields.png"
PLOT_TITLE = "Effective receptive field per variant: at initialisation and after training"
SAMPLES = 16


def measure_effective_field(model: torch.nn.Module, images: torch.Tensor,
                            device: torch.device | str = "cpu", *,
                            report: Any = None) -> dict[str, Any]:
    """The effective field of the last spatial layer's centre unit over ``images``
    (``(N, C, H, W)``, normalised as the model sees them), as a JSON-friendly dict: layer, unit,
    theoretical field, ``extent95``, ``radius68``, ``std``, ``ratio95``, ``clipped`` and the
    normalised ``map`` (rounded to 6 significant digits). ``report``: a ``stridelab.inspect``
    report of a model of the same architecture at this input size (skips capturing it again)."""
    import torch

    from stridelab.inspect.erf import effective_field

    if images.ndim != 4 or images.shape[0] < 1:
        raise ValueError(f"images must be (N, C, H, W) with N >= 1, got {tuple(images.shape)}")
    was_training = model.training
    try:
        erf = effective_field(model, tuple(images.shape[1:]), inputs=images.to(torch.float32),
                              device=device, report=report)
    finally:
        model.train(was_training)
    return {
        "layer": erf.layer, "unit": list(erf.unit), "samples": erf.samples,
        "field": erf.field.to_dict(), "extent95": list(erf.extent(0.95)),
        "radius68": list(erf.radius(0.68)), "std": list(erf.std),
        "ratio95": list(erf.ratio), "clipped": list(erf.clipped),
        "region": [list(r) for r in erf.region],
        "map": [[float(f"{v:.6g}") for v in row] for row in erf.map.tolist()],
    }


def effective_field_entry(initial: torch.nn.Module, trained: torch.nn.Module,
                          images: torch.Tensor, device: torch.device | str = "cpu"
                          ) -> dict[str, Any]:
    """``{"init": ..., "trained": ...}`` from :func:`measure_effective_field` on the first
    :data:`SAMPLES` of ``images`` (the runner passes the normalised test images)."""
    from stridelab.inspect import inspect

    subset = images[:SAMPLES]
    report = inspect(initial, tuple(subset.shape[1:]))  # one capture: same architecture twice
    return {"init": measure_effective_field(initial, subset, "cpu", report=report),
            "trained": measure_effective_field(trained, subset, device, report=report)}


# -- report -------------------------------------------------------------------------------------
def _seeds_with(variant: dict[str, Any]) -> list[dict[str, Any]]:
    return [s["effective_field"] for s in variant.get("seeds", [])
            if isinstance(s.get("effective_field"), dict)]


def _mean_axes(values: list[list[float]]) -> str:
    means = np.mean(np.asarray(values, dtype=np.float64), axis=0)
    text = [f"{v:.1f}" for v in means]
    return text[0] if len(set(text)) == 1 else " x ".join(text)


def summary_rows(results: dict[str, Any]) -> list[tuple[str, ...]]:
    """Per variant with measurements: name, theoretical size, then at init / after training the
    95% extent, std and 95% / theory (means over seeds, per axis when they differ)."""
    rows = []
    for variant in results["variants"]:
        entries = _seeds_with(variant)
        if not entries:
            continue
        size = entries[0]["trained"]["field"]["size"]
        cells = [variant["name"], " x ".join(f"{s:g}" for s in size)
                 if len(set(size)) > 1 else f"{size[0]:g}"]
        for stage in ("init", "trained"):
            cells += [_mean_axes([e[stage]["extent95"] for e in entries]),
                      _mean_axes([e[stage]["std"] for e in entries]),
                      _mean_axes([[r * 100 for r in e[stage]["ratio95"]] for e in entries])]
        rows.append(tuple(cells))
    return rows


COLUMNS = ("variant", "theoretical RF", "95% extent init", "std init", "% of RF init",
           "95% extent trained", "std trained", "% of RF trained")


def markdown_lines(results: dict[str, Any]) -> list[str]:
    """The report's "Effective receptive field" section (empty when nothing was measured)."""
    rows = summary_rows(results)
    if not rows:
        return []
    lines = ["## Effective receptive field (Luo et al. 2016)", "",
             "Mean |d unit / d input| of the last feature map's centre unit over "
             f"{SAMPLES} test images: the width holding 95% of the gradient mass and its std "
             "(input pixels, mean over seeds), next to the theoretical receptive field.", "",
             "| " + " | ".join(COLUMNS) + " |",
             "|" + "|".join([":---"] + ["---:"] * (len(COLUMNS) - 1)) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return [*lines, ""]


def html_section(results: dict[str, Any]) -> str:
    """The same section as HTML (empty string when nothing was measured)."""
    import html
    rows = summary_rows(results)
    if not rows:
        return ""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in COLUMNS)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                   for row in rows)
    return ("<h2>Effective receptive field (Luo et al. 2016)</h2><p>Mean |d unit / d input| of "
            f"the last feature map's centre unit over {SAMPLES} test images: width holding 95% "
            "of the gradient mass and std (input pixels, mean over seeds), beside the "
            f"theoretical field.</p><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody>"
            "</table>")


def effective_fields_png(results: dict[str, Any]) -> bytes | None:
    """One row per variant: the map at initialisation and after training (first seed), each
    with the theoretical field (red, dashed) and the 95% contour; None when nothing was
    measured."""
    import matplotlib
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    from stridelab.viz.erf import mass_levels, smoothed

    measured = [(v["name"], _seeds_with(v)[0]) for v in results["variants"] if _seeds_with(v)]
    if not measured:
        return None
    figure, grid = plt.subplots(len(measured), 2, figsize=(6.4, 2.9 * len(measured)),
                                squeeze=False)
    for row, (name, entry) in enumerate(measured):
        for column, stage in enumerate(("init", "trained")):
            data = entry[stage]
            heat = np.asarray(data["map"], dtype=np.float64)
            axes = grid[row][column]
            axes.imshow(heat, cmap="magma", interpolation="nearest")
            blurred = smoothed(heat, max(0.6, min(data["std"]) / 12))
            level = mass_levels(blurred, (0.95,))[0]
            if 0 < level < float(blurred.max()):
                axes.contour(blurred, levels=[level], colors=["#ffd400"], linewidths=1.2)
            (r0, r1), (c0, c1) = data["region"]
            axes.add_patch(Rectangle((c0 - 0.5, r0 - 0.5), c1 - c0 + 1, r1 - r0 + 1, fill=False,
                                     edgecolor="#ff3b30", linestyle="--", linewidth=1.4))
            axes.set_xlim(-0.5, heat.shape[1] - 0.5)
            axes.set_ylim(heat.shape[0] - 0.5, -0.5)
            extent = " x ".join(f"{e:.1f}" for e in data["extent95"])
            label = "initialisation" if stage == "init" else "trained"
            size = "x".join(f"{v:g}" for v in data["field"]["size"])
            beyond = ", beyond the image" if any(data["clipped"]) else ""
            axes.set_title(f"{name}, {label}\n95% within {extent} px (RF {size}{beyond})",
                           fontsize=8.5)
            axes.tick_params(labelsize=7)
    figure.suptitle("Effective field (95% contour yellow) vs theoretical field (red)",
                    fontsize=9.5)
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=110)
    plt.close(figure)
    return buffer.getvalue()


__all__ = ["PLOT_NAME", "PLOT_TITLE", "effective_field_entry", "effective_fields_png",
           "html_section", "markdown_lines", "measure_effective_field", "summary_rows"]
