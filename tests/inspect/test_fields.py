"""Receptive fields against published numbers, hand recurrences and a brute-force oracle."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import stridelab
from stridelab.arith import ReceptiveField, conv_output_size, pool_output_size
from tests._budget import budget
from tests.inspect import models


def hand_field(path: list[tuple[int, int, int]]) -> tuple[int, int, int]:
    """Distill 2019 closed forms along one path: r = 1 + sum (k-1) prod s, S, P."""
    r, stride, pad = 1, 1, 0
    for k, s, p in path:
        r += (k - 1) * stride
        pad += p * stride
        stride *= s
    return r, stride, pad


def test_vgg16_pool5_is_212_32_90() -> None:
    report = stridelab.inspect(models.vgg16_features())
    assert report.field == ReceptiveField((212, 212), (32, 32), (90, 90))
    assert report.field_at("30") == ReceptiveField((212, 212), (32, 32), (90, 90))


def test_stem_is_11_4_5() -> None:
    stem = nn.Sequential(nn.Conv2d(3, 8, 7, 2, 3), nn.MaxPool2d(3, 2, 1))
    report = stridelab.inspect(stem)
    assert report.field == ReceptiveField((11, 11), (4, 4), (5, 5))
    assert [r.kernel for r in report.layers] == [(7, 7), (3, 3)]
    assert report.layers[1].padding == ((1, 1), (1, 1))


def _resnet_path(blocks: list[int], bottleneck: bool) -> list[tuple[int, int, int]]:
    path = [(7, 2, 3), (3, 2, 1)]
    for stage, count in enumerate(blocks):
        for b in range(count):
            s = 2 if stage > 0 and b == 0 else 1
            if bottleneck:  # 1x1, 3x3 (stride here, torchvision v1.5), 1x1
                path += [(1, 1, 0), (3, s, 1), (1, 1, 0)]
            else:  # 3x3 (stride here), 3x3
                path += [(3, s, 1), (3, 1, 1)]
    return path


def test_resnet18_and_resnet50_at_224_match_hand_recurrences() -> None:
    for build, blocks, bottleneck, last in ((models.resnet18, [2, 2, 2, 2], False, "layer4.1"),
                                            (models.resnet50, [3, 4, 6, 3], True, "layer4.2")):
        report = stridelab.inspect(build())
        r, s, p = hand_field(_resnet_path(blocks, bottleneck))
        field = report.field_at(f"{last}.relu#3" if bottleneck else f"{last}.relu#2")
        assert field == ReceptiveField((r, r), (s, s), (p, p))
        # shortcuts are aligned (no misaligned diagnostic) and the map is 7x7
        assert not [d for d in report.diagnostics if d.code == "misaligned"]
        assert report.layer(f"{last}.relu#2").output_shape[2:] == (7, 7)
    assert hand_field(_resnet_path([2, 2, 2, 2], False))[0] == 435
    assert hand_field(_resnet_path([3, 4, 6, 3], True))[0] == 427


def test_aligned_and_misaligned_two_branch_toys() -> None:
    aligned = stridelab.inspect(models.TwoBranch(aligned=True), (3, 32, 32))
    assert aligned.field == ReceptiveField((3, 3), (2, 2), (1, 1))
    assert not [d for d in aligned.diagnostics if d.code == "misaligned"]
    bad = stridelab.inspect(models.TwoBranch(aligned=False), (3, 32, 32))
    found = [d for d in bad.diagnostics if d.code == "misaligned"]
    assert len(found) == 1 and found[0].layer == "add"
    assert "centre 0x0" in found[0].message and "centre 1/2x1/2" in found[0].message
    # conservative hull: 3x3/2 p1 covers [2u-1, 2u+1], the 2x2 pool [2u, 2u+1]
    assert bad.field == ReceptiveField((3, 3), (2, 2), (1, 1))


def test_works_on_functional_shared_inception_unet() -> None:
    functional = stridelab.inspect(models.Functional(), (3, 64, 64))
    ops = [r.op for r in functional.layers]
    assert ops[:4] == ["pad", "conv2d", "relu", "max_pool2d"]
    assert "interpolate" in ops and "cat" in ops and "linear" in ops
    assert functional.layer("conv2d").padding == ((0, 0), (0, 0))
    shared = stridelab.inspect(models.Shared(), (3, 16, 16))
    assert [r.name for r in shared.layers] == ["stem", "conv", "relu", "conv#2"]
    assert shared.field == ReceptiveField((7, 7), (1, 1), (3, 3))
    assert shared.layer("conv#2").params == 0 and shared.layer("conv").params == 584
    assert shared.layer("conv#2").inputs == ("relu",)
    inception = stridelab.inspect(models.Inception(), (3, 16, 16))
    assert inception.field == ReceptiveField((5, 5), (1, 1), (2, 2))
    assert set(inception.layer("cat").inputs) == {"b1", "b3.1", "b5.1", "bp.1"}
    unet = stridelab.inspect(models.UNet(), (3, 32, 32))
    assert unet.layers[-1].output_shape == (1, 2, 32, 32)
    assert unet.field_at("up2").stride == (2, 2)
    assert not [d for d in unet.diagnostics if d.code == "misaligned"]


def test_fallback_capture_for_untraceable_model() -> None:
    report = stridelab.inspect(models.NotTraceable(), (3, 15, 15))
    assert report.capture == "dispatch"
    assert [r.op for r in report.layers] == ["pad", "Conv2d", "add"]  # F.pad, named as FX names it
    assert report.layer("conv").input_shapes == ((1, 3, 16, 16),)
    assert report.field == ReceptiveField((3, 3), (2, 2), (1, 1))


# -- brute-force oracle ---------------------------------------------------------------------
class Program(nn.Module):
    """A random chain of ones-weighted convs / average pools and two-branch merges."""

    def __init__(self, steps: list[tuple[str, tuple[int, ...]]]) -> None:
        super().__init__()
        self.steps = steps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for kind, a in self.steps:
            if kind == "conv":
                k, s, p = a
                x = F.conv2d(x, torch.ones(1, 1, k, k), stride=s, padding=p)
            elif kind == "pool":
                k, s, p = a
                x = F.avg_pool2d(x, k, s, p)
            elif kind == "crop":  # U-Net skip: valid conv joined with a crop of its input
                k, offset = a
                left = F.conv2d(x, torch.ones(1, 1, k, k))
                n = left.shape[-1]
                x = left + x[..., offset:offset + n, offset:offset + n]
            else:  # branch: conv k/1 p vs F.pad(before, after) + conv k2 valid, joined
                k, p, k2, before, merge = a
                left = F.conv2d(x, torch.ones(1, 1, k, k), padding=p)
                right = F.conv2d(F.pad(x, (before, k2 - 1 - before) * 2),
                                 torch.ones(1, 1, k2, k2))
                right = right[..., :left.shape[-2], :left.shape[-1]]
                x = left + right if merge == 0 else torch.cat([left, right], 1).sum(1, True)
        return x


@st.composite
def programs(draw: st.DrawFn) -> tuple[int, list[tuple[str, tuple[int, ...]]]]:
    size = draw(st.integers(12, 40))
    current = size
    steps: list[tuple[str, tuple[int, ...]]] = []
    for _ in range(draw(st.integers(1, 5))):
        kind = draw(st.sampled_from(["conv", "pool", "branch", "crop"]))
        if kind == "crop":
            k = draw(st.integers(1, 4))
            if current - k + 1 < 2:
                break
            steps.append(("crop", (k, draw(st.integers(0, k - 1)))))
            current = current - k + 1
            continue
        if kind == "branch":
            k = draw(st.sampled_from([1, 3, 5]))
            k2 = draw(st.integers(1, 4))
            before = draw(st.integers(0, k2 - 1))
            steps.append(("branch", (k, k // 2, k2, before, draw(st.integers(0, 1)))))
            continue
        k = draw(st.integers(1, 4))
        s = draw(st.integers(1, k))
        p = draw(st.integers(0, k // 2))
        out = (conv_output_size(current, k, s, p) if kind == "conv"
               else pool_output_size(current, k, s, p)) if current + 2 * p >= k else 0
        if out < 2:
            break
        steps.append((kind, (k, s, p)))
        current = out
    return size, steps


@settings(max_examples=budget(25))
@given(programs())
def test_field_matches_gradient_support(case: tuple[int, list[tuple[str, tuple[int, ...]]]]
                                        ) -> None:
    size, steps = case
    model = Program(steps)
    report = stridelab.inspect(model, (1, size, size))
    x = torch.ones(1, 1, size, size, requires_grad=True)
    out = model(x)
    u = out.shape[-2] // 2
    out[0, 0, u, u].backward()
    rows = torch.nonzero(x.grad[0, 0].abs().sum(1) > 0).flatten()
    field = report.field
    start = u * field.stride[0] - field.padding[0]
    end = start + field.size[0] - 1
    assert int(rows.min()) == max(start, 0)
    # Distill fields assume unbounded maps: pixels that an intermediate map dropped at its end
    # cannot reach the output. Where the unit's field stays inside every map, it is exact.
    reach = min((r.output_shape[-2] - 1) * r.receptive_field.stride[0]
                - r.receptive_field.padding[0] + r.receptive_field.size[0] - 1
                for r in report.layers)
    if end <= reach:
        assert int(rows.max()) == min(end, size - 1)
    else:
        assert int(rows.max()) <= min(end, size - 1)


@settings(max_examples=budget(20))
@given(k=st.integers(1, 5), s=st.integers(1, 3), p=st.integers(0, 2), size=st.integers(3, 9),
       mode=st.sampled_from(["transposed", "nearest", "bilinear"]))
def test_upsampling_field_contains_gradient_support(k: int, s: int, p: int, size: int,
                                                    mode: str) -> None:
    """Transposed conv and nearest resize: exact up to rounding; bilinear: a superset."""
    if mode == "transposed":
        if (size - 1) * s - 2 * p + k < 2:
            return
        model: nn.Module = nn.ConvTranspose2d(1, 1, k, s, p, bias=False)
        nn.init.ones_(model.weight)  # type: ignore[arg-type]
    else:
        model = nn.Upsample(scale_factor=s, mode=mode)
    report = stridelab.inspect(model, (1, size, size))
    x = torch.ones(1, 1, size, size, requires_grad=True)
    out = model(x)
    u = out.shape[-2] // 2
    out[0, 0, u, u].backward()
    rows = torch.nonzero(x.grad[0, 0].abs().sum(1) > 0).flatten()
    field = report.field
    start = u * field.stride[0] - field.padding[0]
    end = start + field.size[0] - 1
    low, high = max(math.ceil(start), 0), min(math.floor(end), size - 1)
    if low > high:  # a hole of a transposed conv with kernel < stride: nothing reaches it
        assert rows.numel() == 0
    elif mode == "bilinear":
        assert low <= int(rows.min()) and int(rows.max()) <= high
    else:
        assert (int(rows.min()), int(rows.max())) == (low, high)


def test_space_to_depth_by_reshape_and_pixel_unshuffle() -> None:
    class Reshaped(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            n, c, h, w = x.shape
            x = x.reshape(n, c, h // 4, 4, w // 4, 4).permute(0, 1, 3, 5, 2, 4)
            return x.reshape(n, c * 16, h // 4, w // 4)

    for model in (Reshaped(), nn.PixelUnshuffle(4)):
        stem = nn.Sequential(model, nn.Conv2d(48, 8, 3, padding=1))
        report = stridelab.inspect(stem, (3, 32, 32))
        assert report.field == ReceptiveField((12, 12), (4, 4), (4, 4))
        assert not [d for d in report.diagnostics if d.code in ("aliasing", "unknown-op")]


def test_one_and_three_spatial_axes() -> None:
    one = stridelab.inspect(nn.Sequential(nn.Conv1d(2, 4, 5, 2, 2), nn.MaxPool1d(3, 2)), (2, 64))
    assert one.field == ReceptiveField((9,), (4,), (2,))
    three = stridelab.inspect(nn.Sequential(nn.Conv3d(1, 2, 3, (1, 2, 2), 1)), (1, 8, 16, 16))
    assert three.field == ReceptiveField((3, 3, 3), (1, 2, 2), (1, 1, 1))


def test_padding_modes_dict_output_and_strided_slices() -> None:
    class Modes(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.reflect = nn.Conv2d(3, 4, 3, padding=1, padding_mode="reflect")
            self.circular = nn.Conv2d(4, 4, 3, 2, 1, padding_mode="circular")

        def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
            y = self.reflect(x)
            return {"out": self.circular(y), "aux": y[:, :, 1::2, 1::2]}

    report = stridelab.inspect(Modes(), (3, 33, 33))
    assert report.layer("reflect").padding == ((1, 1), (1, 1))
    assert report.field_at("circular") == ReceptiveField((5, 5), (2, 2), (2, 2))
    assert report.field == report.field_at("circular")
    # a strided slice starting at 1 is a 1-tap window of stride 2 offset by one pixel
    assert report.layers[-1].receptive_field == ReceptiveField((3, 3), (2, 2), (0, 0))
    assert not [d for d in report.diagnostics if d.severity == "warning"
                and d.code in ("unknown-op", "untracked")]


@settings(max_examples=budget(50))
@given(fields=st.lists(st.tuples(st.integers(1, 20), st.integers(1, 4), st.integers(-3, 10)),
                       min_size=2, max_size=3),
       n=st.integers(1, 12))
def test_hull_contains_every_branch_at_every_output_position(
        fields: list[tuple[int, int, int]], n: int) -> None:
    """The conservative join used at misaligned merges covers each branch's region for every
    output unit, and for equal strides is exactly the union of the regions."""
    from stridelab.inspect.geometry import hull

    joined = hull([ReceptiveField(r, s, p) for r, s, p in fields], (n,))
    for u in range(n):
        start = joined.start(u)
        end = joined.end(u)
        for r, s, p in fields:
            assert start <= u * s - p and u * s - p + r - 1 <= end
    if len({s for _, s, _ in fields}) == 1:
        assert joined.start(0) == min(-p for _, _, p in fields)
        assert joined.end(0) == max(r - 1 - p for r, _, p in fields)
