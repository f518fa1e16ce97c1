"""Small models behind the verify / layout regressions of the zoo (written here; torchvision and
timm are not in the test environment): a RegNet-style projection shortcut, a ConvNeXt stage with
channels-last LayerNorms, and a TNT-like model (pixels inside unfolded patches, then patch
tokens)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tests.inspect.layout_models import SelfAttention


class ProjectionShortcut(nn.Module):
    """A 3x3/2 stem, then a block whose main path is 3x3/2 -> 3x3 and whose shortcut is a 1x1/2
    projection (RegNet / ResNet downsampling). On the even 16-map the shortcut never reads the
    last row; the main path does, so the last unit reaches the last input row."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, 2, 1)
        self.main = nn.Sequential(nn.Conv2d(4, 8, 3, 2, 1), nn.ReLU(), nn.Conv2d(8, 8, 3, 1, 1))
        self.shortcut = nn.Conv2d(4, 8, 1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)  # no ReLU: a dead stem unit would hide the 1x1 shortcut's one read
        return torch.relu(self.main(x) + self.shortcut(x))


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of an ``(N, C, H, W)`` map, through channels-last."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class Permute(nn.Module):
    def __init__(self, *order: int) -> None:
        super().__init__()
        self.order = order

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(*self.order)


class ConvNeXtBlock(nn.Module):
    """7x7 depthwise, then LayerNorm + MLP in ``(N, H, W, C)``, layer scale, residual."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.block = nn.Sequential(
            nn.Conv2d(dim, dim, 7, padding=3, groups=dim), Permute(0, 2, 3, 1), nn.LayerNorm(dim),
            nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim), Permute(0, 3, 1, 2))
        self.layer_scale = nn.Parameter(torch.full((dim, 1, 1), 1e-6))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.layer_scale * self.block(x)


def convnext_stage(dim: int = 8) -> nn.Sequential:
    """Conv 4/4 -> LayerNorm2d -> block -> LayerNorm2d -> Conv 2/2 (a ConvNeXt downsampling)."""
    return nn.Sequential(nn.Conv2d(3, dim, 4, 4), LayerNorm2d(dim), ConvNeXtBlock(dim),
                         LayerNorm2d(dim), nn.Conv2d(dim, dim, 2, 2))


class PixelsInPatches(nn.Module):
    """TNT-like: ``F.unfold`` cuts the image into ``patch x patch`` patches folded into the batch,
    a 3x3/2 convolution runs inside each patch, attention mixes the pixels of one patch
    (inner), a linear layer turns each patch into a token and (``outer``) attention mixes all
    patch tokens. Returns the tokens as an ``(N, C, H / patch, W / patch)`` map."""

    def __init__(self, patch: int = 8, dim: int = 4, width: int = 8, outer: bool = True) -> None:
        super().__init__()
        self.patch = patch
        self.unfold = nn.Unfold(patch, stride=patch)
        self.pixels = nn.Conv2d(3, dim, 3, 2, 1)
        self.inner = SelfAttention(dim)
        self.to_token = nn.Linear(dim * (patch // 2) ** 2, width)
        self.outer = SelfAttention(width) if outer else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        p = self.patch
        grid = (h // p) * (w // p)
        patches = self.unfold(x).transpose(1, 2).reshape(n * grid, c, p, p)
        pixels = self.pixels(patches).flatten(2).transpose(1, 2)  # (n * grid, pixels, dim)
        pixels = pixels + self.inner(pixels)
        tokens = self.to_token(pixels.reshape(n, grid, -1))
        if self.outer is not None:
            tokens = tokens + self.outer(tokens)
        return tokens.transpose(1, 2).reshape(n, -1, h // p, w // p)


class RepeatedName(nn.Module):
    """A module named ``relu`` and a functional ``torch.relu`` in the same scope: FX names both
    rows ``relu``. The 3x3/2 path reads the module's row, whose field is the smaller one."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, 2, 1)
        self.relu = nn.ReLU()
        self.main = nn.Conv2d(4, 8, 3, 2, 1)
        self.shortcut = nn.Conv2d(4, 8, 1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        return torch.relu(self.main(self.relu(x)) + self.shortcut(x))


class UpsampledFuse(nn.Module):
    """HRNet's fuse: a stride-16 branch upsampled 4x (nearest) and added to the stride-4 branch,
    then brought down to stride 32 by 3x3/2 convolutions (timm's ``hrnet_w18_small``)."""

    def __init__(self, width: int = 8) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, width, 3, stride=4, padding=1)
        self.down = nn.Sequential(nn.Conv2d(width, width, 3, 2, 1), nn.Conv2d(width, width, 3, 2, 1))
        self.lateral = nn.Conv2d(width, width, 1)
        self.up = nn.Upsample(scale_factor=4, mode="nearest")
        self.fuse = nn.Sequential(*(nn.Conv2d(width, width, 3, 2, 1) for _ in range(3)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        high = torch.relu(self.stem(x))
        merged = torch.relu(high + self.up(self.lateral(self.down(high))))
        return self.fuse(merged)


def fading_edges(depth: int = 7, edge: float = 1e-7) -> nn.Sequential:
    """3x3 convolutions whose outer taps are ``edge`` and centre tap 1: the gradient at the field's
    edge is ``edge ** depth`` (1e-49 by default), below float32's smallest subnormal (1.4e-45)."""
    layers = []
    for _ in range(depth):
        conv = nn.Conv2d(1, 1, 3, padding=1, bias=False)
        with torch.no_grad():
            conv.weight.fill_(edge)
            conv.weight[0, 0, 1, 1] = 1.0
        layers.append(conv)
    return nn.Sequential(*layers)
