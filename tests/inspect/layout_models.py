"""Small models that move the spatial axes around, one per layout rule (written here; timm and
torchvision are not in the test environment). Each returns an ``(N, C, H, W)`` map so autograd
can check the field of any output unit."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ChannelsLast(nn.Module):
    """ConvNeXt block: 4x4/4 patchify, 7x7 depthwise, LayerNorm + MLP in NHWC, residual."""

    def __init__(self, dim: int = 8) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, dim, 4, 4)
        self.dw = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, 2 * dim)
        self.fc2 = nn.Linear(2 * dim, dim)
        self.gamma = nn.Parameter(torch.full((dim,), 0.5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        y = self.dw(x).permute(0, 2, 3, 1)
        y = self.fc2(F.gelu(self.fc1(self.norm(y))))
        return x + (y * self.gamma.view(1, 1, 1, -1)).permute(0, 3, 1, 2)


class SelfAttention(nn.Module):
    """Two-head self-attention over all tokens: explicit softmax(q k^T) v, or torch's fused
    scaled_dot_product_attention."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, fused: bool = False) -> torch.Tensor:
        n, length, dim = x.shape
        qkv = self.qkv(x).reshape(n, length, 3, 2, dim // 2).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        if fused:
            out = F.scaled_dot_product_attention(q, k, v)
        else:
            out = (q @ k.transpose(-2, -1) * (dim // 2) ** -0.5).softmax(-1) @ v
        return self.proj(out.transpose(1, 2).reshape(n, length, dim))


class TokenGrid(nn.Module):
    """ViT-style: patch grid flattened to tokens, a class token concatenated in front, position
    embeddings, an MLP on tokens, optionally global self-attention; back to a map for a conv."""

    def __init__(self, dim: int = 8, grid: int = 8, attention: bool = False) -> None:
        super().__init__()
        self.embed = nn.Conv2d(3, dim, 4, 4)
        self.cls = nn.Parameter(torch.randn(1, 1, dim))
        self.pos = nn.Parameter(torch.randn(1, grid * grid + 1, dim))
        self.norm = nn.LayerNorm(dim)
        self.mlp = nn.Linear(dim, dim)
        self.attention = SelfAttention(dim) if attention else None
        self.conv = nn.Conv2d(dim, dim, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        grid = self.embed(x)
        n, c, h, w = grid.shape
        tokens = grid.flatten(2).transpose(1, 2)
        tokens = torch.cat([self.cls.expand(n, -1, -1), tokens], dim=1) + self.pos
        tokens = tokens + self.mlp(self.norm(tokens))
        if self.attention is not None:
            normed = self.norm(tokens)
            tokens = tokens + self.attention(normed)
        patches = tokens[:, 1:]
        return self.conv(patches.transpose(1, 2).reshape(n, c, h, w))


class ClassHead(nn.Module):
    """ViT-style classifier: tokens with a class token, global fused attention, the class token
    into a linear head."""

    def __init__(self, dim: int = 8, grid: int = 8) -> None:
        super().__init__()
        self.embed = nn.Conv2d(3, dim, 4, 4)
        self.cls = nn.Parameter(torch.randn(1, 1, dim))
        self.pos = nn.Parameter(torch.randn(1, grid * grid + 1, dim))
        self.norm = nn.LayerNorm(dim)
        self.attention = SelfAttention(dim)
        self.head = nn.Linear(dim, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.embed(x).flatten(2).transpose(1, 2)
        tokens = torch.cat([self.cls.expand(x.shape[0], -1, -1), tokens], dim=1) + self.pos
        tokens = tokens + self.attention(self.norm(tokens), fused=True)
        return self.head(tokens[:, 0])


class WindowAttention(nn.Module):
    """Swin-style: 2x2/2 patchify, NHWC, (shifted) window partition, attention inside each
    window, window reverse; ``shift`` rolls the map first and back after."""

    def __init__(self, dim: int = 8, window: int = 4, shift: int = 0) -> None:
        super().__init__()
        self.embed = nn.Conv2d(3, dim, 2, 2)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.window = window
        self.shift = shift

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embed(x)
        n, c, h, w = x.shape
        ws = self.window
        t = x.permute(0, 2, 3, 1)
        if self.shift:
            t = torch.roll(t, (-self.shift, -self.shift), (1, 2))
        t = t.view(n, h // ws, ws, w // ws, ws, c).permute(0, 1, 3, 2, 4, 5)
        t = t.reshape(-1, ws * ws, c)
        q, k, v = self.qkv(t).chunk(3, dim=-1)
        attn = (q @ k.transpose(-2, -1) * c ** -0.5).softmax(-1)
        t = self.proj(attn @ v)
        t = t.view(n, h // ws, w // ws, ws, ws, c).permute(0, 1, 3, 2, 4, 5).reshape(n, h, w, c)
        if self.shift:
            t = torch.roll(t, (self.shift, self.shift), (1, 2))
        return t.permute(0, 3, 1, 2)


class PatchMerging(nn.Module):
    """torchvision Swin's patch merging: four strided slices concatenated along channels, then
    LayerNorm and a linear reduction (space-to-depth by slicing); a conv after it."""

    def __init__(self, dim: int = 4) -> None:
        super().__init__()
        self.embed = nn.Conv2d(3, dim, 2, 2)
        self.norm = nn.LayerNorm(4 * dim)
        self.reduce = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.conv = nn.Conv2d(2 * dim, 2 * dim, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.embed(x).permute(0, 2, 3, 1)
        parts = [t[:, 0::2, 0::2], t[:, 1::2, 0::2], t[:, 0::2, 1::2], t[:, 1::2, 1::2]]
        t = self.reduce(self.norm(torch.cat(parts, -1)))
        return self.conv(t.permute(0, 3, 1, 2))


class SqueezeExcite(nn.Module):
    """Two 3x3 convs with a squeeze-excitation gate (global average -> 1x1 convs -> sigmoid)."""

    def __init__(self, dim: int = 8) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, dim, 3, padding=1)
        self.fc1 = nn.Conv2d(dim, dim // 2, 1)
        self.fc2 = nn.Conv2d(dim // 2, dim, 1)
        self.conv2 = nn.Conv2d(dim, dim, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv1(x)
        gate = torch.sigmoid(self.fc2(F.relu(self.fc1(y.mean((2, 3), keepdim=True)))))
        return self.conv2(y * gate)


class EfficientChannel(nn.Module):
    """ECA: global average, a 1-D conv across channels, sigmoid, multiplied into the map."""

    def __init__(self, dim: int = 8) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, dim, 3, padding=1)
        self.mix = nn.Conv1d(1, 1, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(dim, dim, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv1(x)
        n = y.shape[0]
        gate = self.mix(y.mean((2, 3)).view(n, 1, -1)).view(n, -1, 1, 1).sigmoid()
        return self.conv2(y * gate.expand_as(y))


class StackUnbind(nn.Module):
    """Selective-kernel style: 3x3 and 5x5 branches stacked on a new axis, summed, unbound."""

    def __init__(self, dim: int = 4) -> None:
        super().__init__()
        self.small = nn.Conv2d(3, dim, 3, padding=1)
        self.large = nn.Conv2d(3, dim, 5, padding=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        both = torch.stack([self.small(x), self.large(x)], dim=1)
        first, second = both.unbind(1)
        return both.sum(1) + first * second


class Shuffle(nn.Module):
    """3x3 conv, pixel_shuffle(2) (depth-to-space), 3x3 conv on the finer grid."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(F.pixel_shuffle(self.conv1(x), 2))


class UnfoldLinear(nn.Module):
    """A 3x3 convolution written as F.unfold + a linear layer over the patch."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(3 * 9, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        cols = F.unfold(x, 3, padding=1, stride=2)
        out = self.linear(cols.transpose(1, 2)).transpose(1, 2)
        return out.reshape(n, 4, (h + 1) // 2, (w + 1) // 2)


class BlockGrid(nn.Module):
    """MaxViT-style: attention inside 4x4 blocks, then grid attention over tokens 4 apart
    (a 4x4 grid spread over the whole map)."""

    def __init__(self, dim: int = 8, size: int = 4) -> None:
        super().__init__()
        self.embed = nn.Conv2d(3, dim, 2, 2)
        self.block = SelfAttention(dim)
        self.grid = SelfAttention(dim)
        self.size = size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.embed(x).permute(0, 2, 3, 1)
        n, h, w, c = t.shape
        s = self.size
        blocks = t.view(n, h // s, s, w // s, s, c).permute(0, 1, 3, 2, 4, 5).reshape(-1, s * s, c)
        blocks = blocks + self.block(blocks)
        t = blocks.view(n, h // s, w // s, s, s, c).permute(0, 1, 3, 2, 4, 5).reshape(n, h, w, c)
        grid = t.view(n, s, h // s, s, w // s, c).permute(0, 2, 4, 1, 3, 5).reshape(-1, s * s, c)
        grid = grid + self.grid(grid)
        t = grid.view(n, h // s, w // s, s, s, c).permute(0, 3, 1, 4, 2, 5).reshape(n, h, w, c)
        return t.permute(0, 3, 1, 2)
