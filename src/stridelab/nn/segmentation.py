"""FCN-style semantic segmentation on a :class:`ResNet` backbone (Long, Shelhamer & Darrell 2015).

The head (3x3 conv to ``max(C / 4, num_classes)`` channels -> BN -> ReLU -> dropout -> 1x1 conv to
``num_classes``; never narrower than the classes, or the per-pixel logits could not separate them)
runs on the last stage, at the backbone's output stride ``S``; the logits are then brought back to exactly the
input's height and width, for any input size:

* ``upsample="bilinear"``: ``F.interpolate(size=(H, W))``.
* ``upsample="transposed"``: a depthwise transposed conv with stride ``S``, kernel ``2S - 1`` and
  padding ``S - 1``, initialised to the bilinear (tent) filter so feature ``u`` lands on pixel
  ``u * S``. Its ``output_padding`` is computed per input size by
  :func:`stridelab.arith.output_padding_for` (always in ``[0, S)`` because every layer of the
  backbone gives ``ceil(i / s)``).
* ``upsample="skip"``: a skip-connected decoder (U-Net / FPN style, see
  :class:`stridelab.nn.pyramid.FeaturePyramid`) merges the backbone's maps from stride ``S`` down
  to stride ``min(2, S)``; the head runs on that finest merged map, then bilinear to ``H x W``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from stridelab.arith import output_padding_for
from stridelab.nn.pyramid import FeaturePyramid, feature_channels, pyramid_strides
from stridelab.nn.resnet import ResNet

UPSAMPLES = ("bilinear", "transposed", "skip")
SKIP_FINEST_STRIDE = 2


class TransposedUpsample(nn.Module):
    """Depthwise ``factor``-times transposed conv whose output size is chosen per call."""

    def __init__(self, channels: int, factor: int) -> None:
        super().__init__()
        self.channels, self.factor = channels, factor
        self.kernel_size, self.stride, self.padding = 2 * factor - 1, factor, factor - 1
        tent = torch.tensor([1.0 - abs(t - (factor - 1)) / factor
                             for t in range(self.kernel_size)])
        kernel = (tent[:, None] * tent[None, :]).expand(channels, 1, -1, -1).contiguous()
        self.weight = nn.Parameter(kernel)

    def extra_repr(self) -> str:
        return f"{self.channels}, factor={self.factor}"

    def forward(self, x: Tensor, size: tuple[int, int]) -> Tensor:
        size_in = (int(x.shape[-2]), int(x.shape[-1]))
        extra = output_padding_for(size_in, size, self.kernel_size, self.stride, self.padding)
        return F.conv_transpose2d(x, self.weight, None, self.stride, self.padding, extra,
                                  self.channels)


class SegmentationModel(nn.Module):
    """Backbone features at output stride ``S`` -> FCN head -> logits of the input's H x W.

    ``backbone`` is a :class:`ResNet` (its ``fc`` is not used; build it with ``num_classes=0``).
    """

    def __init__(self, backbone: ResNet, *, num_classes: int = 21,
                 upsample: str = "bilinear", dropout: float = 0.1,
                 decoder_channels: int = 32) -> None:
        super().__init__()
        if not isinstance(backbone, ResNet):
            raise TypeError(f"backbone must be a stridelab.nn.ResNet, got {type(backbone).__name__}")
        if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
            raise ValueError(f"num_classes must be an int >= 1, got {num_classes!r}")
        if upsample not in UPSAMPLES:
            raise ValueError(f"upsample must be one of {UPSAMPLES}, got {upsample!r}")
        self.backbone = backbone
        channels = backbone.out_channels
        self.decoder: FeaturePyramid | None = None
        if upsample == "skip":
            available = feature_channels(backbone)
            strides = pyramid_strides(list(available), min(SKIP_FINEST_STRIDE,
                                                           backbone.output_stride),
                                      backbone.output_stride)
            self.decoder = FeaturePyramid({s: available[s] for s in strides},
                                          channels=decoder_channels, outputs=strides[:1])
            channels = decoder_channels
        inner = max(channels // 4, num_classes)
        self.head = nn.Sequential(
            nn.Conv2d(channels, inner, 3, padding=1, bias=False), nn.BatchNorm2d(inner),
            nn.ReLU(inplace=True), nn.Dropout(dropout), nn.Conv2d(inner, num_classes, 1))
        self.upsample_mode = upsample
        self.output_stride = backbone.output_stride
        self.upsample = (TransposedUpsample(num_classes, self.output_stride)
                         if upsample == "transposed" else None)

    def forward(self, x: Tensor) -> Tensor:
        size = (int(x.shape[-2]), int(x.shape[-1]))
        if self.decoder is not None:
            merged = self.decoder(self.backbone.features(x))
            features = merged[self.decoder.strides[0]]
        else:
            features = self.backbone.stage_outputs(x)[-1]
        logits = self.head(features)
        if self.upsample is not None:
            upsampled: Tensor = self.upsample(logits, size)
            return upsampled
        return F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
