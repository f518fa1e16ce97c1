"""The definitions, written as explicit loops over output positions: a second, slow oracle.

"Multiply element-wise and sum, then move by the stride." Padding is given as one
``(before, after)`` pair per axis; nothing here is vectorised beyond one window at a time.
"""

from __future__ import annotations

from itertools import product

import numpy as np

Pairs = tuple[tuple[int, int], ...]


def _pad(x: np.ndarray, pads: Pairs, fill: float = 0.0) -> np.ndarray:
    return np.pad(x, [(0, 0), (0, 0), *pads], constant_values=fill)


def conv(x: np.ndarray, w: np.ndarray, stride: tuple[int, ...], pads: Pairs,
         dilation: tuple[int, ...], groups: int) -> np.ndarray:
    xp = _pad(x, pads)
    n, c = x.shape[:2]
    cout, cig, *kernel = w.shape
    cog = cout // groups
    out = [(xp.shape[2 + a] - dilation[a] * (kernel[a] - 1) - 1) // stride[a] + 1
           for a in range(len(kernel))]
    y = np.zeros((n, cout, *out), dtype=x.dtype)
    for b, co in product(range(n), range(cout)):
        grp = co // cog
        for u in product(*(range(o) for o in out)):
            window = xp[(b, slice(grp * cig, (grp + 1) * cig),
                         *(slice(u[a] * stride[a], u[a] * stride[a] + dilation[a] * (kernel[a] - 1)
                                 + 1, dilation[a]) for a in range(len(kernel))))]
            y[(b, co, *u)] = np.sum(window * w[co])
    return y


def conv_backward(g: np.ndarray, x: np.ndarray, w: np.ndarray, stride: tuple[int, ...],
                  pads: Pairs, dilation: tuple[int, ...], groups: int
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Loops over output positions, sending each output's gradient back through its window."""
    xp = _pad(x, pads)
    gxp = np.zeros_like(xp)
    gw = np.zeros_like(w)
    cout, cig, *kernel = w.shape
    cog = cout // groups
    for b, co in product(range(g.shape[0]), range(cout)):
        grp = co // cog
        for u in product(*(range(o) for o in g.shape[2:])):
            index = (b, slice(grp * cig, (grp + 1) * cig),
                     *(slice(u[a] * stride[a], u[a] * stride[a] + dilation[a] * (kernel[a] - 1) + 1,
                             dilation[a]) for a in range(len(kernel))))
            gxp[index] += g[(b, co, *u)] * w[co]
            gw[co] += g[(b, co, *u)] * xp[index]
    crop = (slice(None), slice(None), *(slice(pb, pb + i) for (pb, _), i in zip(pads, x.shape[2:])))
    return gxp[crop], gw


def conv_transpose(x: np.ndarray, w: np.ndarray, stride: tuple[int, ...], pads: Pairs,
                   output_padding: tuple[int, ...], dilation: tuple[int, ...],
                   groups: int) -> np.ndarray:
    """Scatter definition: every input value stamps ``value * kernel`` at ``u * s`` (minus padding)."""
    n, cin = x.shape[:2]
    _, cog, *kernel = w.shape
    cig = cin // groups
    full = [(i - 1) * s + d * (k - 1) + 1 + op for i, s, d, k, op in
            zip(x.shape[2:], stride, dilation, kernel, output_padding)]
    y = np.zeros((n, cog * groups, *full), dtype=x.dtype)
    for b, ci in product(range(n), range(cin)):
        grp = ci // cig
        for u in product(*(range(i) for i in x.shape[2:])):
            index = (b, slice(grp * cog, (grp + 1) * cog),
                     *(slice(u[a] * stride[a], u[a] * stride[a] + dilation[a] * (kernel[a] - 1) + 1,
                             dilation[a]) for a in range(len(kernel))))
            y[index] += x[(b, ci, *u)] * w[ci]
    crop = (slice(None), slice(None), *(slice(pb, f - pa) for (pb, pa), f in zip(pads, full)))
    return y[crop]


def max_pool(x: np.ndarray, kernel: tuple[int, ...], stride: tuple[int, ...], pads: Pairs,
             dilation: tuple[int, ...], out: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Max over the real pixels of each window; first maximum in scan order; flat indices."""
    n, c, *size = x.shape
    y = np.zeros((n, c, *out), dtype=x.dtype)
    idx = np.zeros((n, c, *out), dtype=np.int64)
    for b, ch in product(range(n), range(c)):
        for u in product(*(range(o) for o in out)):
            best, where = -np.inf, None
            for t in product(*(range(k) for k in kernel)):
                pos = [u[a] * stride[a] - pads[a][0] + t[a] * dilation[a] for a in range(len(size))]
                if all(0 <= p < s for p, s in zip(pos, size)):
                    value = x[(b, ch, *pos)]
                    if where is None or value > best:
                        best, where = value, pos
            assert where is not None
            y[(b, ch, *u)] = best
            idx[(b, ch, *u)] = np.ravel_multi_index(where, size)
    return y, idx


def avg_pool(x: np.ndarray, kernel: tuple[int, ...], stride: tuple[int, ...], pads: Pairs,
             out: tuple[int, ...], count_include_pad: bool) -> np.ndarray:
    """Mean over each window; the divisor counts padding up to ``size + pad_after`` if asked."""
    n, c, *size = x.shape
    y = np.zeros((n, c, *out), dtype=x.dtype)
    for b, ch in product(range(n), range(c)):
        for u in product(*(range(o) for o in out)):
            total, real, padded = 0.0, 1, 1
            lo, hi = [], []
            for a in range(len(size)):
                start = u[a] * stride[a] - pads[a][0]
                end = min(start + kernel[a], size[a] + pads[a][1])
                padded *= end - start
                lo.append(max(start, 0))
                hi.append(min(end, size[a]))
                real *= hi[-1] - lo[-1]
            for pos in product(*(range(a, b_) for a, b_ in zip(lo, hi))):
                total += x[(b, ch, *pos)]
            y[(b, ch, *u)] = total / (padded if count_include_pad else real)
    return y
