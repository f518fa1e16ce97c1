"""The effective receptive field against Luo, Li, Urtasun and Zemel (NeurIPS 2016), section 2.

Oracles: the n-fold convolution of box filters (NumPy), its closed-form variance
``n (k^2 - 1) / 12`` per axis, and for strided / dilated stacks the exact variance of a
composition of combs, ``sum_l (S_l d_l)^2 (k_l^2 - 1) / 12`` (``S_l`` the product of the strides
before layer l, ``d_l`` its dilation): variances of independent steps add, each step scaled by
the spacing at which it reads the input. All in float64.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

import stridelab
from stridelab.inspect.erf import effective_field, effective_fields

MAX_DEPTH = 20
MARGIN = 2


def ones_stack(depth: int, k: int, ndim: int, *, stride: tuple[int, ...] = (),
               dilation: tuple[int, ...] = (), channels: int = 1, groups: int = 1,
               random: int | None = None) -> nn.Sequential:
    """``depth`` k-wide convolutions without bias or nonlinearity, float64, all-ones weights
    (or N(0, 1) weights drawn with seed ``random``); ``groups`` independent stacks side by
    side (grouped convolutions)."""
    conv = (nn.Conv1d, nn.Conv2d)[ndim - 1]
    generator = torch.Generator().manual_seed(random) if random is not None else None
    layers = []
    for index in range(depth):
        s = stride[index] if index < len(stride) else 1
        d = dilation[index] if index < len(dilation) else 1
        layer = conv(channels, channels, k, s, dilation=d, groups=groups, bias=False).double()
        with torch.no_grad():
            if generator is None:
                layer.weight.fill_(1.0)
            else:
                layer.weight.copy_(torch.randn(layer.weight.shape, generator=generator,
                                               dtype=torch.float64))
        layers.append(layer)
    return nn.Sequential(*layers)


def box_power(depth: int, k: int) -> np.ndarray:
    """The n-fold convolution of a k-wide box filter (the 1-D oracle)."""
    out = np.ones(1)
    for _ in range(depth):
        out = np.convolve(out, np.ones(k))
    return out / out.sum()


@pytest.mark.parametrize("ndim", [1, 2])
@pytest.mark.parametrize("k", range(1, 8))
def test_all_ones_stack_is_a_box_power_with_variance_n_k2_minus_1_over_12(ndim: int,
                                                                           k: int) -> None:
    side = MAX_DEPTH * (k - 1) + 1 + 2 * MARGIN
    model = ones_stack(MAX_DEPTH, k, ndim)
    fields = effective_fields(model, (1, *(side,) * ndim), [str(n) for n in range(MAX_DEPTH)],
                              unit=(MARGIN,) * ndim, samples=1)
    for depth in range(1, MAX_DEPTH + 1):
        erf = fields[str(depth - 1)]
        assert erf.map.dtype == np.float64
        expected_std = math.sqrt(depth * (k * k - 1) / 12)
        centre = MARGIN + depth * (k - 1) / 2  # unit u of valid convs sees [u, u + n (k - 1)]
        for axis in range(ndim):
            assert erf.center[axis] == pytest.approx(centre, abs=1e-9)
            if k == 1:
                assert erf.std[axis] == pytest.approx(0.0, abs=1e-6)
            else:
                assert erf.std[axis] == pytest.approx(expected_std, rel=1e-6)
        span = depth * (k - 1) + 1
        oracle = box_power(depth, k)
        if ndim == 2:
            oracle = np.outer(oracle, oracle)
        window = tuple(slice(MARGIN, MARGIN + span) for _ in range(ndim))
        np.testing.assert_allclose(erf.map[window], oracle, rtol=1e-9, atol=1e-15)
        assert erf.map.sum() == pytest.approx(1.0, abs=1e-12)
        assert erf.field.size == (span,) * ndim and not any(erf.clipped)


def test_radius_spreads_each_pixel_over_its_width() -> None:
    # one 7-wide box: the mass is uniform on [centre - 3.5, centre + 3.5]
    model = ones_stack(1, 7, 1)
    erf = effective_field(model, (1, 11), unit=(2,), samples=1)
    assert erf.center == (5.0,)
    assert erf.radius(0.95)[0] == pytest.approx(0.95 * 3.5, abs=1e-9)
    assert erf.radius(0.68)[0] == pytest.approx(0.68 * 3.5, abs=1e-9)
    assert erf.extent(0.5)[0] == pytest.approx(3.5, abs=1e-9)
    # a Gaussian-like box power: about 95% within 2 std (Luo et al.: the ERF tends to a Gaussian)
    deep = effective_field(ones_stack(12, 5, 1), (1, 60), unit=(5,), samples=1)
    assert deep.radius(0.954)[0] == pytest.approx(2 * deep.std[0], rel=0.03)
    with pytest.raises(ValueError, match="fraction"):
        erf.radius(1.5)


def test_random_weights_grow_like_the_square_root_of_depth() -> None:
    """Luo et al. 2.3: with random weights the ERF's std still grows as sqrt(n).

    32 independent stacks of 4 channels side by side (grouped convolutions, N(0, 1) weights,
    seed 0; each input channel belongs to one stack, so the map sums the 32 stacks' maps),
    1-D, k = 3, no nonlinearity. Per position the gradient is a zero-mean sum whose variance
    spreads like the all-ones map B_n (Luo et al.), so mean |g| follows sqrt(B_n) when g is
    close to Gaussian: each depth's std must be within 8% of std(sqrt(B_n)), and the log-log
    slope of std over depths 4, 8, 16 within 0.5 +- 0.12 (linear growth would give 1).
    Measured with seed 0: 2.00 / 2.99 / 4.39 px against 2.03 / 3.08 / 4.50, slope 0.57.
    """
    side, groups, depths = 16 * 2 + 1 + 2 * MARGIN, 32, (4, 8, 16)
    model = ones_stack(16, 3, 1, channels=4 * groups, groups=groups, random=0)
    report = stridelab.inspect(model, (4 * groups, side), dtype=torch.float64)
    stds = []
    for depth in depths:
        unit = (MARGIN + (16 - depth),)  # the same input centre at every depth
        erf = effective_field(model, (4 * groups, side), layer=str(depth - 1), unit=unit,
                              samples=1, report=report)
        assert erf.center[0] == pytest.approx(MARGIN + 16, abs=0.5)
        oracle = np.sqrt(box_power(depth, 3))
        oracle /= oracle.sum()
        positions = np.arange(oracle.size)
        mean = float(np.dot(positions, oracle))
        expected = math.sqrt(float(np.dot((positions - mean) ** 2, oracle)))
        assert erf.std[0] == pytest.approx(expected, rel=0.08)
        stds.append(erf.std[0])
    slope = float(np.polyfit(np.log(depths), np.log(stds), 1)[0])
    assert slope == pytest.approx(0.5, abs=0.12)


def comb_variance(k: int, strides: list[int], dilations: list[int]) -> float:
    variance, spacing = 0.0, 1
    for s, d in zip(strides, dilations):
        variance += (spacing * d) ** 2 * (k * k - 1) / 12
        spacing *= s
    return variance


@pytest.mark.parametrize("where", [0, 2, 5])
def test_stride_and_dilation_widen_the_map_as_luo_describe(where: int) -> None:
    """Subsampling early scales every later layer's spread by the stride; dilation scales that
    layer's (Luo et al. 2.4 / 2.5): std^2 = sum_l (S_l d_l)^2 (k^2 - 1) / 12, exactly."""
    depth, k, side = 6, 3, 64
    plain = effective_field(ones_stack(depth, k, 1), (1, side), samples=1)
    strides = [2 if i == where else 1 for i in range(depth)]
    strided = effective_field(ones_stack(depth, k, 1, stride=tuple(strides)), (1, side),
                              samples=1)
    dilations = [2 if i == where else 1 for i in range(depth)]
    dilated = effective_field(ones_stack(depth, k, 1, dilation=tuple(dilations)), (1, side),
                              samples=1)
    assert plain.std[0] ** 2 == pytest.approx(comb_variance(k, [1] * depth, [1] * depth),
                                              rel=1e-9)
    assert strided.std[0] ** 2 == pytest.approx(comb_variance(k, strides, [1] * depth),
                                                rel=1e-9)
    assert dilated.std[0] ** 2 == pytest.approx(comb_variance(k, [1] * depth, dilations),
                                                rel=1e-9)
    assert dilated.std[0] > plain.std[0]
    if where < depth - 1:  # subsampling widens the layers after it; the last one has none
        assert strided.std[0] > plain.std[0]
    else:
        assert strided.std[0] == pytest.approx(plain.std[0], rel=1e-12)
    # the earlier the subsampling, the wider the map (more layers read at the coarser spacing)
    if where == 0:
        assert strided.std[0] > 1.8 * plain.std[0]  # sqrt(14) vs sqrt(4)
    # the theory widens too, and still contains the map
    for erf in (plain, strided, dilated):
        (start, end), = erf.region
        support = np.nonzero(erf.map)[0]
        assert start <= support.min() and support.max() <= end


def test_border_units_are_clipped_and_say_so() -> None:
    model = nn.Sequential(*[nn.Conv2d(1, 1, 5, padding=2, bias=False) for _ in range(4)]).double()
    for conv in model:
        nn.init.ones_(conv.weight)  # type: ignore[arg-type]
    corner = effective_field(model, (1, 32, 32), unit=(0, 0), samples=1)
    centre = effective_field(model, (1, 32, 32), samples=1)
    assert corner.clipped == (True, True) and centre.clipped == (False, False)
    assert "clipped" in corner.summary() and "clipped" not in centre.summary()
    assert corner.region == ((-8.0, 8.0), (-8.0, 8.0))
    # the image cuts the map: mass only on real pixels, the centre pulled inside, std smaller
    assert corner.map.sum() == pytest.approx(1.0)
    assert corner.center[0] > 0 and corner.std[0] < centre.std[0]
    assert centre.std[0] == pytest.approx(math.sqrt(4 * 24 / 12), rel=1e-9)
