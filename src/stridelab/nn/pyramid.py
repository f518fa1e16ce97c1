"""Feature pyramid (Lin et al. 2017, "Feature Pyramid Networks for Object Detection").

Input: a backbone's ``features()`` dict ``{effective_stride: (N, C_s, H_s, W_s)}``. Each chosen
stride gets a 1x1 lateral conv to ``channels``; the top-down path starts at the coarsest stride and,
going finer, upsamples the running map to the next map's exact size (nearest neighbour, as in the
paper; any size, so odd inputs work) and adds that map's lateral; a 3x3 conv (+ BN + ReLU) then
smooths every merged map that is an output. Output: ``{stride: (N, channels, H_s, W_s)}`` for the
``outputs`` strides (default: all; a decoder that reads only the finest map asks for that one, so
that no parameter goes unused, which DistributedDataParallel requires).

Used as the detector's multi-scale neck (strides 8..32) and as the skip-connected decoder of
:class:`stridelab.nn.SegmentationModel` (``upsample="skip"``: strides from the output stride down
to 2, only the finest output is read).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from stridelab.nn.resnet import ResNet


class FeaturePyramid(nn.Module):
    """Top-down pathway with lateral connections over ``in_channels`` (``{stride: channels}``)."""

    def __init__(self, in_channels: Mapping[int, int], *, channels: int = 32,
                 outputs: Sequence[int] | None = None) -> None:
        super().__init__()
        if not in_channels:
            raise ValueError("in_channels must map at least one stride to its channel count")
        for stride, count in in_channels.items():
            if not isinstance(stride, int) or stride < 1 or not isinstance(count, int) or count < 1:
                raise ValueError(f"in_channels must map int strides >= 1 to int channels >= 1; "
                                 f"got {stride!r}: {count!r}")
        if not isinstance(channels, int) or channels < 1:
            raise ValueError(f"channels must be an int >= 1, got {channels!r}")
        self.strides: tuple[int, ...] = tuple(sorted(in_channels))
        self.outputs: tuple[int, ...] = tuple(sorted(set(outputs))) if outputs else self.strides
        if not set(self.outputs) <= set(self.strides):
            raise ValueError(f"outputs must be among the strides {list(self.strides)}; got "
                             f"{list(outputs or [])}")
        self.channels = channels
        self.lateral = nn.ModuleDict({str(s): nn.Conv2d(in_channels[s], channels, 1)
                                      for s in self.strides})
        self.smooth = nn.ModuleDict({
            str(s): nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(channels), nn.ReLU(inplace=True))
            for s in self.outputs})

    def forward(self, features: Mapping[int, Tensor]) -> dict[int, Tensor]:
        missing = [s for s in self.strides if s not in features]
        if missing:
            raise ValueError(f"features lack stride(s) {missing}; have {sorted(features)}")
        merged: dict[int, Tensor] = {}
        running: Tensor | None = None
        for stride in reversed(self.strides):  # coarse to fine
            lateral = self.lateral[str(stride)](features[stride])
            if running is not None:
                lateral = lateral + F.interpolate(running, size=lateral.shape[-2:], mode="nearest")
            running = lateral
            if stride in self.outputs:
                merged[stride] = self.smooth[str(stride)](lateral)
        return {s: merged[s] for s in self.outputs}


def pyramid_strides(available: Sequence[int], finest: int, coarsest: int) -> list[int]:
    """The strides of ``available`` within ``[finest, coarsest]`` (sorted, unique)."""
    return sorted({s for s in available if finest <= s <= coarsest})


def feature_channels(backbone: ResNet) -> dict[int, int]:
    """``{effective_stride: channels}`` of a :class:`stridelab.nn.ResNet`'s ``features()`` dict
    (when stages share a stride the deepest one is kept, as ``features()`` does)."""
    plan = backbone.plan
    counts = [plan.stem_width] + [stage.width * plan.expansion for stage in plan.resolved_stages()]
    return dict(zip(backbone.feature_strides, counts, strict=True))
