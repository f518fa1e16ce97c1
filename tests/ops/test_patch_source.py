"""Patches read from per-piece bands of padded rows (strided layers) or from one whole copy.

Oracle: torch.nn.functional.conv* and autograd at float64 1e-10, and the two sources against
each other bit for bit (same numbers multiplied in the same order). Tiny pieces make bands of
one or two output rows, bands that lie partly or wholly in the padding, and dilated rows.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stridelab import ops
from stridelab.ops import _chunks, _patchsource
from stridelab.ops._geometry import conv_geometry
from tests._budget import budget
from tests.ops import _torch_ref as ref
from tests.ops._configs import ConvCase, conv_cases

ALWAYS_BANDED = float("inf")
NEVER_BANDED = 0.0


def _results(case: ConvCase, x: np.ndarray, w: np.ndarray, g: np.ndarray, halo: float
             ) -> tuple[np.ndarray, ...]:
    args = (case.stride, case.padding, case.dilation, case.groups)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_patchsource, "HALO_LIMIT", halo)
        y = ops.conv(x, w, None, *args, threads=2)
        gx, gw, _ = ops.conv_backward(g, x, w, *args, bias=False, threads=2)
    return y, gx, gw


def _check(case: ConvCase, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((case.batch, case.in_channels, *case.size))
    w = rng.standard_normal((case.out_channels, case.in_channels // case.groups, *case.kernel))
    y = ops.conv(x, w, None, case.stride, case.padding, case.dilation, case.groups)
    g = rng.standard_normal(y.shape)
    banded = _results(case, x, w, g, ALWAYS_BANDED)
    whole = _results(case, x, w, g, NEVER_BANDED)
    expected = ref.conv(case, x, w, np.zeros(case.out_channels), g)
    for name, a, b, e in zip(("output", "grad_x", "grad_weight"), banded, whole, expected):
        ref.assert_close(a, e, 1e-10, f"{name} (banded) {case}")
        assert np.array_equal(a, b), f"{name}: banded and whole input differ for {case}"


@pytest.fixture
def small_pieces(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Patch matrices of at most 512 bytes: bands of one or two output rows."""
    monkeypatch.setattr(_chunks, "column_bytes", lambda backward=False: 512)
    yield


@settings(max_examples=budget(25), deadline=None)
@given(case=conv_cases(ndims=(1, 2, 3)), seed=st.integers(0, 2**31))
def test_banded_input_matches_torch_and_the_whole_copy(case: ConvCase, seed: int) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_chunks, "column_bytes", lambda backward=False: 512)
        _check(case, seed)


def _case(size: tuple[int, int], k: int, s: int, d: int, padding: object, groups: int = 1
          ) -> ConvCase:
    from stridelab import arith
    pads = arith.padding_pairs(padding, size, (k, k), (s, s), (d, d))  # type: ignore[arg-type]
    return ConvCase(2, 4, 6, groups, size, (k, k), (s, s), (d, d), padding,  # type: ignore[arg-type]
                    tuple(pads))


@pytest.mark.parametrize("case", [
    _case((9, 7), 7, 2, 1, 3),  # stem-like: the first bands are mostly top padding
    _case((4, 6), 3, 2, 1, 5),  # padding wider than the input: bands wholly in the padding
    _case((11, 8), 3, 2, 2, 2),  # dilated rows: a band spans (k - 1) * d + 1 padded rows
    _case((10, 10), 3, 2, 1, "same"),  # asymmetric 'same' padding (the odd pixel after)
    _case((8, 9), 3, 3, 1, 1, groups=2),  # grouped, stride 3 (gaps between windows)
])
def test_band_edges_match_torch(small_pieces: None, case: ConvCase) -> None:
    _check(case, 11)


def _geometry(size: int, cin: int, k: int, s: int, p: int):  # type: ignore[no-untyped-def]
    return conv_geometry((8, cin, size, size), (cin, cin, k, k), s, p, 1, 1)


def test_strided_resnet_layers_use_bands_and_stride_one_uses_one_copy() -> None:
    """The choice depends on the geometry only: bands when they re-copy <= 25 % of the rows."""
    for backward in (False, True):
        strided = _geometry(56, 128, 3, 2, 1)
        units = _chunks.plan(strided, 4, budget=768 << 10, backward=backward)
        assert _patchsource.banded_rows(strided, units) <= _patchsource.HALO_LIMIT
        x = np.zeros(strided.input_shape(), np.float32)
        assert isinstance(_patchsource.patch_source(x, strided, units), _patchsource.BandedInput)
    dense = _geometry(56, 128, 3, 1, 1)
    units = _chunks.plan(dense, 4, budget=768 << 10)
    # bands of three output rows read five padded rows each (brute force over the pieces)
    copied = sum(len({u + t for u in range(p.rows.start, p.rows.stop) for t in range(3)})
                 for p in units[0])
    assert _patchsource.banded_rows(dense, units) == copied / 58 > _patchsource.HALO_LIMIT
    x = np.zeros(dense.input_shape(), np.float32)
    assert isinstance(_patchsource.patch_source(x, dense, units), _patchsource.WholeInput)


def test_padded_rows_follow_the_window_formula() -> None:
    """Output row u reads padded rows u * s + t * d for t < k (brute force over every row)."""
    geom = conv_geometry((1, 1, 30, 5), (1, 1, 4, 1), (3, 1), 2, (2, 1), 1)
    for a in range(geom.out_size[0]):
        for b in range(a + 1, geom.out_size[0] + 1):
            read = {u * 3 + t * 2 for u in range(a, b) for t in range(4)}
            start, stop = _patchsource.padded_rows(geom, slice(a, b))
            assert (start, stop - 1) == (min(read), max(read))
