"""`stridelab.viz.animate` / `stridelab animate`: frame content checked against independent oracles.

Oracles: the per-axis windows of :func:`stridelab.arith.windows` (as the issue asks) and, for the
footprints, torch autograd (the input cells an output unit depends on); the dropped border from
:func:`stridelab.arith.dropped_pixels`; the numbers of ``--values`` from a NumPy brute-force loop;
the pixels from the decoded GIF / PNG.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from itertools import product
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from PIL import Image

from stridelab import arith
from stridelab.cli import main
from stridelab.viz import animate, animation_frames, conv_spec
from stridelab.viz.render import COLORS
from tests._budget import budget

# (input, kernel, stride, padding, dilation): odd/even sizes, H != W, dilation, asymmetric padding
CONV_CASES = [
    ((5, 5), 3, 2, 1, 1),
    ((6, 7), 3, 2, 0, 1),
    ((7, 6), (3, 2), (2, 1), ((1, 0), (0, 2)), 1),
    ((9, 8), 3, 2, 1, 2),
    ((6, 6), 3, 2, "same", 1),
    ((5, 8), 2, 3, 0, 1),
]


def footprint_from_arith(size, kernel, stride, padding, dilation, index):  # type: ignore[no-untyped-def]
    """The 2-D footprint of output ``index``: the product of the per-axis windows of arith."""
    pads = arith.padding_pairs(padding, size, kernel, stride, dilation)
    ks, ss, ds = (arith.per_axis(n, v, 2, 1) for n, v in
                  (("kernel", kernel), ("stride", stride), ("dilation", dilation)))
    rows = arith.windows(size[0], ks[0], ss[0], pads[0], ds[0])[index[0]]
    cols = arith.windows(size[1], ks[1], ss[1], pads[1], ds[1])[index[1]]
    return {(r, c) for r in rows for c in cols}


def footprint_from_torch(size, kernel, stride, padding, dilation, index):  # type: ignore[no-untyped-def]
    """Input cells (padding included, in input coordinates) output ``index`` depends on."""
    pads = arith.padding_pairs(padding, size, kernel, stride, dilation)
    (pt, pb), (pl, pr) = pads
    h, w = size
    padded = torch.zeros(1, 1, h + pt + pb, w + pl + pr, requires_grad=True)
    ks = arith.per_axis("kernel", kernel, 2, 1)
    out = F.conv2d(padded, torch.ones(1, 1, *ks), stride=stride, dilation=dilation)
    out[0, 0, index[0], index[1]].backward()
    grad = padded.grad
    assert grad is not None
    return {(int(r) - pt, int(c) - pl) for r, c in zip(*np.nonzero(grad[0, 0].numpy()))}


@pytest.mark.parametrize("case", CONV_CASES, ids=str)
def test_conv_frames_match_arith_and_torch(case) -> None:  # type: ignore[no-untyped-def]
    size, kernel, stride, padding, dilation = case
    plan = animation_frames(conv_spec(size, kernel, stride, padding, dilation))
    out = arith.conv_output_size(size, arith.per_axis("k", kernel, 2, 1),
                                 arith.per_axis("s", stride, 2, 1),
                                 arith.padding_pairs(padding, size, kernel, stride, dilation),
                                 arith.per_axis("d", dilation, 2, 1))
    assert isinstance(out, tuple)
    assert len(plan.frames) == out[0] * out[1]
    assert [f.output_cells for f in plan.frames] == [((r, c),) for r, c in
                                                     product(range(out[0]), range(out[1]))]
    for frame in plan.frames:
        index = frame.output_cells[0]
        cells = set(frame.input_cells)
        assert len(cells) == len(frame.input_cells)  # one cell per tap
        assert cells == footprint_from_arith(size, kernel, stride, padding, dilation, index)
        assert cells == footprint_from_torch(size, kernel, stride, padding, dilation, index)
    # padding cells: exactly the ring implied by padding_pairs
    (pt, pb), (pl, pr) = arith.padding_pairs(padding, size, kernel, stride, dilation)
    h, w = size
    assert len(plan.input_padding) == (h + pt + pb) * (w + pl + pr) - h * w
    assert all(not (0 <= r < h and 0 <= c < w) for r, c in plan.input_padding)
    # dropped: the last dropped_pixels rows / columns, and nothing reads them
    drop = arith.dropped_pixels(size, kernel, stride, padding, dilation)
    assert isinstance(drop, tuple)
    expected = {(r, c) for r in range(h) for c in range(w) if r >= h - drop[0] or c >= w - drop[1]}
    assert plan.dropped == expected
    read = {cell for f in plan.frames for cell in f.input_cells}
    assert not plan.dropped & read
    assert plan.unread == {(r, c) for r in range(h) for c in range(w)} - read


def test_dilation_gaps_are_not_highlighted() -> None:
    plan = animation_frames(conv_spec(7, 3, 1, 0, 2))
    first = set(plan.frames[0].input_cells)
    assert first == {(r, c) for r in (0, 2, 4) for c in (0, 2, 4)}
    assert (1, 1) not in first and (0, 1) not in first


def test_dropped_border_counted() -> None:
    # 6 wide, kernel 3, stride 2, no padding: column 5 (and row 5) is never reached
    plan = animation_frames(conv_spec(6, 3, 2, 0))
    assert arith.dropped_pixels(6, 3, 2) == 1
    assert plan.dropped == {(r, c) for r in range(6) for c in range(6) if r == 5 or c == 5}


@hsettings(max_examples=budget(40))
@given(st.integers(1, 9), st.integers(1, 9), st.integers(1, 4), st.integers(1, 3),
       st.integers(0, 2), st.integers(1, 2))
def test_footprints_property(h: int, w: int, k: int, s: int, p: int, d: int) -> None:
    if d * (k - 1) + 1 > min(h, w) + 2 * p:
        with pytest.raises(ValueError, match="kernel"):
            conv_spec((h, w), k, s, p, d)
        return
    plan = animation_frames(conv_spec((h, w), k, s, p, d))
    assert len(plan.frames) == ((h + 2 * p - d * (k - 1) - 1) // s + 1) * \
        ((w + 2 * p - d * (k - 1) - 1) // s + 1)
    for frame in plan.frames:
        assert set(frame.input_cells) == footprint_from_arith((h, w), k, s, p, d,
                                                              frame.output_cells[0])


TRANSPOSED_CASES = [((3, 3), 3, 2, 1, 1, 1), ((2, 3), 4, 2, 1, 1, 0), ((3, 2), 3, 1, 0, 2, 0)]


@pytest.mark.parametrize("case", TRANSPOSED_CASES, ids=str)
def test_transposed_frames_match_torch(case) -> None:  # type: ignore[no-untyped-def]
    size, kernel, stride, padding, dilation, out_pad = case
    plan = animation_frames(conv_spec(size, kernel, stride, padding, dilation, transposed=True,
                                      output_padding=out_pad))
    h, w = size
    assert len(plan.frames) == h * w  # one frame per input position
    out = arith.transposed_output_size(size, (kernel, kernel), stride, padding, dilation, out_pad)
    assert plan.spec.output_size == out
    weight = torch.ones(1, 1, kernel, kernel)
    for frame in plan.frames:
        (r, c), = frame.input_cells
        x = torch.zeros(1, 1, h, w)
        x[0, 0, r, c] = 1.0
        y = F.conv_transpose2d(x, weight, stride=stride, padding=padding, dilation=dilation,
                               output_padding=out_pad)[0, 0].numpy()
        written = {(int(a), int(b)) for a, b in zip(*np.nonzero(y))}
        inside = {cell for cell in frame.output_cells
                  if 0 <= cell[0] < out[0] and 0 <= cell[1] < out[1]}
        assert inside == written
        assert len(frame.output_cells) == kernel * kernel


def _center(box: tuple[int, int, int, int]) -> tuple[int, int]:
    x0, y0, x1, y1 = box
    return (x0 + x1) // 2, (y0 + y1) // 2


def test_gif_pixels_show_the_footprint(tmp_path: Path) -> None:
    path = tmp_path / "conv.gif"
    result = animate((6, 7), 3, stride=2, padding=0, dilation=1, path=path)
    plan, layout = result.plan, result.layout
    with Image.open(path) as gif:
        assert gif.n_frames == len(plan.frames) == 2 * 3
        for n in (0, 4, len(plan.frames) - 1):
            gif.seek(n)
            rgb = gif.convert("RGB")
            frame = plan.frames[n]
            taps = set(frame.input_cells)
            for cell in taps:
                assert rgb.getpixel(_center(layout.cell_box("input", cell))) == COLORS["tap"]
            others = [(r, c) for r in range(6) for c in range(7)
                      if (r, c) not in taps and (r, c) not in plan.dropped]
            for cell in others:
                assert rgb.getpixel(_center(layout.cell_box("input", cell))) != COLORS["tap"]
            current = frame.output_cells[0]
            assert rgb.getpixel(_center(layout.cell_box("output", current))) == COLORS["current"]
    # dropped pixels (row 5 of a 6x7 input, k3 s2) are drawn in the dropped colour
    assert plan.dropped == {(5, c) for c in range(7)}
    with Image.open(path) as gif:
        rgb = gif.convert("RGB")
        for cell in plan.dropped:
            assert rgb.getpixel(layout.probe("input", cell)) == COLORS["dropped"]
        for cell in plan.input_padding:
            assert rgb.getpixel(layout.probe("input", cell)) == COLORS["padding"]


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o027, 0o640), (0o002, 0o664)])
def test_saved_files_get_normal_permissions(tmp_path: Path, umask: int, mode: int) -> None:
    old = os.umask(umask)
    try:
        animate(3, 2, path=tmp_path / "a.gif")
        animate(3, 2, path=tmp_path / "a.png")
        (tmp_path / "plain").touch()  # what the OS gives a normally created file
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "plain").stat().st_mode) == mode
    for name in ("a.gif", "a.png"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == mode
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def _brute_conv(x: np.ndarray, w: np.ndarray, stride: tuple[int, int],
                pads: tuple[tuple[int, int], ...], dil: tuple[int, int]) -> np.ndarray:
    xp = np.pad(x, pads)
    kh, kw = w.shape
    oh = (xp.shape[0] - dil[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (xp.shape[1] - dil[1] * (kw - 1) - 1) // stride[1] + 1
    out = np.zeros((oh, ow))
    for r, c, a, b in product(range(oh), range(ow), range(kh), range(kw)):
        out[r, c] += xp[r * stride[0] + a * dil[0], c * stride[1] + b * dil[1]] * w[a, b]
    return out


@pytest.mark.parametrize("case", [((5, 5), 3, 2, 1, 1), ((7, 6), (3, 2), 2, ((0, 1), (1, 0)), 2)],
                         ids=str)
def test_values_match_numpy_brute_force(case) -> None:  # type: ignore[no-untyped-def]
    size, kernel, stride, padding, dilation = case
    result = animate(size, kernel, stride, padding, dilation, values=True)
    vals, spec = result.values, result.plan.spec
    assert vals is not None
    expected = _brute_conv(vals.inputs, vals.weight, spec.stride, spec.padding, spec.dilation)
    np.testing.assert_array_equal(vals.output, expected)
    for step, frame in enumerate(result.plan.frames):
        r, c = frame.output_cells[0]
        total = sum(p.product for p in vals.products[step])
        assert total == expected[r, c]
        assert vals.outputs[step][r, c] == expected[r, c]
        assert len(vals.products[step]) == spec.kernel[0] * spec.kernel[1]


def test_transposed_values_match_numpy_scatter() -> None:
    result = animate(3, 3, stride=2, padding=1, transposed=True, output_padding=1, values=True)
    vals, spec = result.values, result.plan.spec
    assert vals is not None
    x, w = vals.inputs, vals.weight
    full = np.zeros((2 * 2 + 3 + 1, 2 * 2 + 3 + 1))  # (i-1)*s + k + output_padding, uncropped
    for r, c, a, b in product(range(3), range(3), range(3), range(3)):
        full[r * 2 + a, c * 2 + b] += x[r, c] * w[a, b]
    expected = full[1:1 + spec.output_size[0], 1:1 + spec.output_size[1]]
    np.testing.assert_array_equal(vals.output, expected)
    np.testing.assert_array_equal(vals.outputs[-1], expected)


def test_png_strip_size(tmp_path: Path) -> None:
    path = tmp_path / "strip.png"
    result = animate(5, 3, stride=2, padding=1, path=path, columns=4)
    assert len(result.frames) == 9
    with Image.open(path) as strip:
        assert strip.size == (4 * result.layout.width, 3 * result.layout.height)


def test_cli_writes_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "conv.gif"
    code = main(["animate", "--input", "5", "--kernel", "3", "--stride", "2", "--padding", "1",
                 "-o", str(path)])
    assert code == 0 and path.is_file()
    out = capsys.readouterr().out
    assert str(path) in out and "9 frames" in out and "-> 3x3" in out
    png = tmp_path / "t.png"
    code = main(["animate", "--input", "3x2", "--kernel", "3", "--stride", "2", "--padding", "1",
                 "--transposed", "--output-padding", "1", "--values", "--format", "png",
                 "-o", str(png)])
    assert code == 0
    with Image.open(png) as image:
        assert image.format == "PNG"
    assert "6 frames" in capsys.readouterr().out


def test_cli_padding_pair_means_before_after_on_both_axes(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["animate", "--input", "5x6", "--kernel", "3", "--padding", "0,1",
                 "-o", str(tmp_path / "p.gif")])
    assert code == 0
    assert "padding (0,1)x(0,1)" in capsys.readouterr().out


BAD_ARGS = [
    ["--input", "5", "--kernel", "0"],
    ["--input", "5", "--kernel", "3", "--padding", "sideways"],
    ["--input", "5", "--kernel", "9"],
    ["--input", "5", "--kernel", "3", "--output-padding", "1"],
    ["--input", "5", "--kernel", "3", "--format", "jpg"],
    ["--input", "5x", "--kernel", "3"],
    ["--input", "5x5x5", "--kernel", "3"],
    ["--input", "40", "--kernel", "3"],
    ["--input", "3", "--kernel", "3", "--transposed", "--stride", "2", "--output-padding", "2"],
]


@pytest.mark.parametrize("extra", BAD_ARGS, ids=" ".join)
def test_cli_bad_parameters(extra: list[str], tmp_path: Path,
                            capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.gif"
    assert main(["animate", *extra, "-o", str(path)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not path.exists()


def test_cli_unknown_suffix_without_format(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["animate", "--input", "5", "--kernel", "3", "-o", str(tmp_path / "a.bmp")]) == 2
    assert "format" in capsys.readouterr().err


def test_imports_stay_light() -> None:
    code = ("import sys, stridelab.viz, stridelab.cli.animate; "
            "heavy = [m for m in ('torch', 'matplotlib') if m in sys.modules]; "
            "assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_cli_summary_counts_dropped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["animate", "--input", "6x7", "--kernel", "3", "--stride", "2",
                 "-o", str(tmp_path / "d.gif")]) == 0
    assert arith.dropped_pixels((6, 7), 3, 2) == (1, 0)
    assert "dropped pixels: 7 (last 1 rows, last 0 columns)" in capsys.readouterr().out
