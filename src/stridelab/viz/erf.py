"""Pictures of the effective receptive field (Luo et al. 2016) beside the theoretical one.

* :func:`effective_field_plot`: the map as a heatmap with the unit's theoretical field (red box),
  the contours holding 68% and 95% of the mass, and the radial profile next to a Gaussian of the
  measured std (Luo et al.: the effective field is close to Gaussian).
* :func:`effective_field_overlay`: the same map, measured on the bundled photo (scikit-learn's
  ``china.jpg``) and laid over it.

The map and every number come from :class:`stridelab.inspect.erf.EffectiveField`; matplotlib
(Agg) draws, imported only when a picture is made. Files are written atomically as PNG.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from stridelab.inspect.erf import EffectiveField

FRACTIONS = (0.68, 0.95)
CONTOUR_COLORS = ("#00e5ff", "#ffd400")
BOX_COLOR = "#ff3b30"


def mass_levels(heat: np.ndarray, fractions: Sequence[float] = FRACTIONS) -> list[float]:
    """Per fraction, the value ``t`` such that the pixels with ``heat >= t`` hold that fraction
    of the mass (the highest-density region), for drawing contours."""
    values = np.sort(heat.ravel())[::-1]
    cumulative = np.cumsum(values) / max(float(values.sum()), 1e-300)
    levels = []
    for fraction in fractions:
        at = int(np.searchsorted(cumulative, fraction))
        levels.append(float(values[min(at, values.size - 1)]))
    return levels


def smoothed(heat: np.ndarray, sigma: float) -> np.ndarray:
    """``heat`` blurred by a Gaussian of ``sigma`` pixels on every axis (zero outside), so the
    contours of a map measured on few samples follow its shape, not its pixel noise."""
    if sigma <= 0:
        return heat
    half = max(1, int(3 * sigma))
    taps = np.exp(-np.arange(-half, half + 1) ** 2 / (2 * sigma ** 2))
    taps /= taps.sum()
    out = heat.astype(np.float64)
    for axis in range(out.ndim):
        out = np.apply_along_axis(lambda line: np.convolve(line, taps, mode="same"), axis, out)
    return out


def radial_profile(erf: EffectiveField) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(radius, mean value per ring, cumulative mass)`` around the map's centre, rings 1 px
    wide (centre ``erf.center``; radius in input pixels). 2-D maps; a 1-D map is its own
    profile (distance from the centre)."""
    heat = erf.map
    grids = np.meshgrid(*[np.arange(n) for n in heat.shape], indexing="ij")
    distance = np.sqrt(sum((g - c) ** 2 for g, c in zip(grids, erf.center)))
    rings = np.floor(distance + 0.5).astype(int).ravel()
    counts = np.bincount(rings)
    sums = np.bincount(rings, weights=heat.ravel())
    keep = counts > 0
    radius = np.arange(counts.size)[keep]
    mean = sums[keep] / counts[keep]
    return radius, mean, np.cumsum(sums[keep]) / max(float(heat.sum()), 1e-300)


def _plane(erf: EffectiveField) -> tuple[np.ndarray, tuple[float, ...], str]:
    """The 2-D picture of the map: itself, or the middle slice of a 3-D map."""
    if erf.ndim == 2:
        return erf.map, erf.center, ""
    middle = int(round(erf.center[0]))
    return erf.map[middle], erf.center[1:], f" (slice {middle} of axis 0)"


def _save(figure: Any, path: str | os.PathLike[str]) -> Path:
    from stridelab.viz.animate import atomic_save
    target = Path(path)
    atomic_save(target, lambda tmp: figure.savefig(tmp, format="png", dpi=110))
    return target


def _box(axes: Any, erf: EffectiveField, axis_rows: int, axis_cols: int) -> None:
    from matplotlib.patches import Rectangle
    (r0, r1), (c0, c1) = erf.region[axis_rows], erf.region[axis_cols]
    axes.add_patch(Rectangle((c0 - 0.5, r0 - 0.5), c1 - c0 + 1, r1 - r0 + 1, fill=False,
                             edgecolor=BOX_COLOR, linewidth=1.6, linestyle="--",
                             label="theoretical field"))


def _contours(axes: Any, heat: np.ndarray, std: Sequence[float]) -> None:
    """68% / 95% highest-density contours of ``heat``, blurred by std / 12 when that is at
    least half a pixel (small maps are drawn as measured)."""
    sigma = min(std) / 12
    blurred = smoothed(heat, sigma if sigma >= 0.5 else 0.0)
    levels = mass_levels(blurred)
    if levels[1] < levels[0]:
        axes.contour(blurred, levels=[levels[1], levels[0]], colors=CONTOUR_COLORS[::-1],
                     linewidths=1.4)


def _heatmap(axes: Any, erf: EffectiveField) -> None:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Rectangle
    heat, centre, note = _plane(erf)
    h, w = heat.shape
    rows, cols = erf.region[erf.ndim - 2], erf.region[erf.ndim - 1]
    # show the whole theoretical field: the part outside the image is padding (hatched)
    top, bottom = min(-0.5, rows[0] - 0.5), max(h - 0.5, rows[1] + 0.5)
    left, right = min(-0.5, cols[0] - 0.5), max(w - 0.5, cols[1] + 0.5)
    margin = 0.03 * max(bottom - top, right - left)
    axes.set_facecolor("#d9d9d9")
    if any(erf.clipped):
        axes.add_patch(Rectangle((left - margin, top - margin), right - left + 2 * margin,
                                 bottom - top + 2 * margin, facecolor="#d9d9d9",
                                 edgecolor="#b0b0b0", hatch="//", linewidth=0, zorder=0))
    axes.imshow(heat, cmap="magma", interpolation="nearest", origin="upper",
                extent=(-0.5, w - 0.5, h - 0.5, -0.5), zorder=1)
    _contours(axes, heat, erf.std[-2:])
    _box(axes, erf, erf.ndim - 2, erf.ndim - 1)
    axes.plot([centre[1]], [centre[0]], marker="+", color="white", markersize=10)
    axes.set_xlim(left - margin, right + margin)
    axes.set_ylim(bottom + margin, top - margin)
    field = "x".join(str(s) for s in erf.field.size)
    axes.set_title(f"{erf.layer} unit ({','.join(map(str, erf.unit))}){note}", fontsize=10)
    axes.set_xlabel("input column (px)")
    axes.set_ylabel("input row (px)")
    box_label = f"theoretical field {field} px" + (" (clipped)" if any(erf.clipped) else "")
    handles: list[Any] = [
        Line2D([], [], color=BOX_COLOR, linestyle="--", label=box_label),
        Line2D([], [], color=CONTOUR_COLORS[0], label="68% of the mass"),
        Line2D([], [], color=CONTOUR_COLORS[1], label="95% of the mass")]
    if any(erf.clipped):
        handles.append(Rectangle((0, 0), 1, 1, facecolor="#d9d9d9", edgecolor="#b0b0b0",
                                 hatch="//", label="padding (outside the image)"))
    legend = axes.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.12),
                         ncol=2, fontsize=7.5, frameon=False)
    legend.set_zorder(5)


def _profile(axes: Any, erf: EffectiveField) -> None:
    radius, mean, cumulative = radial_profile(erf)
    peak = max(float(mean.max()), 1e-300)
    sigma = float(np.mean(erf.std))
    limit = float(radius[-1])
    r95 = float(np.interp(0.95, cumulative, radius))
    r68 = float(np.interp(0.68, cumulative, radius))
    half = max(float(s) for s in erf.field.size) / 2
    shown = min(limit, max(2.2 * r95, 1.2 * min(half, limit), 4.0))
    fine = np.linspace(0, shown, 200)
    axes.plot(radius, mean / peak, color="#d62728", marker="o", markersize=2.5, linewidth=1.2,
              label="measured (ring mean / peak)")
    if sigma > 0:
        axes.plot(fine, np.exp(-fine ** 2 / (2 * sigma ** 2)), color="#555555", linestyle=":",
                  label=f"Gaussian, std {sigma:.1f} px")
    for value, name, style in ((r68, "68%", "-"), (r95, "95%", "--")):
        axes.axvline(value, color="#1f77b4", linestyle=style, linewidth=1,
                     label=f"{name} of the mass within {value:.1f} px")
    if half <= shown:
        axes.axvline(half, color=BOX_COLOR, linestyle="--", linewidth=1,
                     label=f"theoretical half-size {half:.0f} px")
    axes.set_xlim(0, shown)
    axes.set_ylim(0, 1.05)
    axes.set_xlabel("distance from the centre (input px)")
    axes.set_ylabel("gradient magnitude (relative)")
    axes.set_title("radial profile", fontsize=10)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7.5, loc="upper right")


def effective_field_plot(erf: EffectiveField, path: str | os.PathLike[str] | None = None,
                         *, title: str | None = None) -> Any:
    """Heatmap (theoretical box, 68% / 95% contours, centre) and radial profile of ``erf``.

    1-D maps are drawn as a curve with the theoretical span; 3-D maps show their middle slice
    along the first axis. Returns the matplotlib figure; writes a PNG to ``path`` when given.
    """
    import matplotlib
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    if erf.ndim == 1:
        figure, axes = plt.subplots(figsize=(7.5, 3.6))
        _curve(axes, erf)
        panels = [axes]
    else:
        figure, panels = plt.subplots(1, 2, figsize=(11, 5),
                                      gridspec_kw={"width_ratios": [1, 1.1]})
        _heatmap(panels[0], erf)
        _profile(panels[1], erf)
    extent = " x ".join(f"{e:.0f}" for e in erf.extent(0.95))
    std = " x ".join(f"{s:.1f}" for s in erf.std)
    ratio = " x ".join(f"{r:.2f}" for r in erf.ratio)
    of = f" of {erf.model_name}" if erf.model_name else ""
    heading = title or (f"Effective receptive field{of} ({erf.samples} {erf.inputs} inputs)\n"
                        f"95% extent {extent} px, std {std} px: {ratio} of the theoretical "
                        f"size")
    figure.suptitle(heading, fontsize=10.5)
    figure.tight_layout()
    if path is not None:
        _save(figure, path)
        plt.close(figure)
    return figure


def _curve(axes: Any, erf: EffectiveField) -> None:
    heat = erf.map
    positions = np.arange(heat.size)
    axes.fill_between(positions, heat, step="mid", color="#d62728", alpha=0.35)
    axes.plot(positions, heat, color="#d62728", drawstyle="steps-mid", label="effective field")
    start, end = erf.region[0]
    axes.axvspan(start - 0.5, end + 0.5, facecolor="none", edgecolor=BOX_COLOR, linestyle="--",
                 label="theoretical field")
    for fraction, style in zip(FRACTIONS, ("-", "--")):
        r = erf.radius(fraction)[0]
        axes.axvspan(erf.center[0] - r, erf.center[0] + r, color="#1f77b4", alpha=0.08)
        axes.axvline(erf.center[0] - r, color="#1f77b4", linestyle=style, linewidth=1,
                     label=f"{fraction:.0%} of the mass")
        axes.axvline(erf.center[0] + r, color="#1f77b4", linestyle=style, linewidth=1)
    axes.set_xlim(-0.5, heat.size - 0.5)
    axes.set_xlabel("input position (px)")
    axes.set_ylabel("share of the mass")
    axes.legend(fontsize=8)


def effective_field_overlay(
    model: Any, layer: str | None = None, image: Any = None,
    unit: Sequence[int] | None = None, *, input_size: Sequence[int] = (3, 224, 224),
    samples: int = 8, noise: float = 0.15, device: str = "cpu",
    path: str | os.PathLike[str] | None = None,
) -> Any:
    """The effective field of one unit measured on a real photo, laid over it.

    ``image``: anything :func:`stridelab.viz.overlay.load_image` reads; None is scikit-learn's
    bundled ``china.jpg``. It is resized to ``input_size`` (C, H, W), scaled to [0, 1] and
    standardised with the ImageNet mean / std; the gradient map is averaged over the photo and
    ``samples - 1`` copies with N(0, ``noise``^2) added (SmoothGrad, Smilkov et al. 2017), so the
    map is the effective field *on this image*. Drawn: the photo, the map as a translucent heat
    layer, the 68% / 95% contours and the theoretical box. Returns the matplotlib figure; writes
    a PNG to ``path`` when given.
    """
    import matplotlib
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    import torch
    from PIL import Image

    from stridelab.inspect.erf import effective_field
    from stridelab.viz.overlay import load_image

    if len(input_size) != 3:
        raise ValueError(f"input_size must be (channels, height, width), got {input_size!r}")
    if not isinstance(samples, int) or isinstance(samples, bool) or samples < 1:
        raise ValueError(f"samples must be an int >= 1, got {samples!r}")
    channels, height, width = (int(v) for v in input_size)
    photo = load_image(image).resize((width, height), Image.Resampling.BICUBIC)
    pixels = np.asarray(photo, dtype=np.float32) / 255.0
    mean = np.array([0.485, 0.456, 0.406], dtype=np.float32)
    std = np.array([0.229, 0.224, 0.225], dtype=np.float32)
    normal = torch.from_numpy(((pixels - mean) / std).transpose(2, 0, 1).copy())
    if channels != 3:
        normal = normal.mean(0, keepdim=True).expand(channels, -1, -1)
    generator = torch.Generator().manual_seed(0)
    batch = normal.unsqueeze(0).repeat(samples, 1, 1, 1)
    batch[1:] += noise / float(std.mean()) * torch.randn(batch[1:].shape, generator=generator)
    erf = effective_field(model, tuple(input_size), layer=layer, unit=unit, inputs=batch,
                          device=device)
    figure, axes = plt.subplots(figsize=(6.2, 6.2 * height / width + 0.9))
    axes.imshow(pixels, interpolation="bilinear")
    heat = erf.map / max(float(erf.map.max()), 1e-300)
    colours = plt.get_cmap("inferno")(heat)
    colours[..., 3] = np.clip(heat * 1.6, 0, 0.85)
    axes.imshow(colours, interpolation="bilinear")
    _contours(axes, erf.map, erf.std)
    _box(axes, erf, 0, 1)
    axes.set_xlim(-0.5, width - 0.5)
    axes.set_ylim(height - 0.5, -0.5)
    axes.set_axis_off()
    extent = " x ".join(f"{e:.0f}" for e in erf.extent(0.95))
    field = "x".join(str(s) for s in erf.field.size)
    axes.set_title(f"{erf.layer} unit ({','.join(map(str, erf.unit))}) on a photo: 95% of the "
                   f"gradient within {extent} px\n(contours 68% / 95%); theoretical field "
                   f"{field} px (red){', clipped' if any(erf.clipped) else ''}", fontsize=9.5)
    figure.tight_layout()
    if path is not None:
        _save(figure, path)
        plt.close(figure)
    return figure


__all__ = ["effective_field_overlay", "effective_field_plot", "mass_levels", "radial_profile"]
