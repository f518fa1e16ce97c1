"""Step-by-step arithmetic as text, with the floor visible and dropped pixels named.

The point is to make the classic mistake impossible to miss: for input 6, kernel 3, stride 2 and no
padding, ``(6 - 3) / 2 + 1`` is *not* 3; it is ``floor(3 / 2) + 1 = 2``, and input column 5 is
never read.
"""

from __future__ import annotations

from stridelab.arith._check import IntOrTuple, PaddingSpec, per_axis
from stridelab.arith.sizes import (
    padding_pairs,
    pool_output_size,
    spatial_ndim,
    transposed_output_size,
    uncovered_pixels,
)

EXPLAIN_KINDS = ("conv", "pool", "transposed")


def _pad_terms(before: int, after: int) -> str:
    return f"2*{before}" if before == after else f"{before} + {after}"


def _conv_axis(i: int, k: int, s: int, pad: tuple[int, int], d: int, label: str) -> list[str]:
    lines: list[str] = []
    k_eff = d * (k - 1) + 1
    if d != 1:
        lines.append(f"{label}effective kernel = {d}*({k} - 1) + 1 = {k_eff}")
    span = i + pad[0] + pad[1] - k_eff
    if span < 0:
        raise ValueError(f"kernel is larger than the padded input: effective kernel {k_eff} > "
                         f"{i} + {pad[0]} + {pad[1]}")
    head = f"({i} + {_pad_terms(*pad)} - {k_eff})"
    quotient, remainder = divmod(span, s)
    if remainder == 0:
        lines.append(f"{label}{head} / {s} + 1 = {quotient} + 1 = {quotient + 1}")
    else:
        lines.append(f"{label}floor({head} / {s}) + 1 = floor({span} / {s}) + 1 = "
                     f"{quotient} + 1 = {quotient + 1}")
        lines.append(f"{label}  {span} / {s} is not a whole number: the remainder {remainder} "
                     f"is thrown away by the floor.")
    if remainder:
        real = max(remainder - pad[1], 0)
        if real:
            first = i - real
            cols = f"position {first}" if real == 1 else f"positions {first}..{i - 1}"
            lines.append(f"{label}  DROPPED: input {cols} (the last {real}) never reached by any "
                         f"window.")
        else:
            lines.append(f"{label}  only padding is left unread at the end; no real pixel is "
                         f"dropped.")
    gaps = [x for x in uncovered_pixels(i, k, s, pad, d) if x < i - max(remainder - pad[1], 0)]
    if gaps:
        shown = ", ".join(map(str, gaps[:8])) + (", ..." if len(gaps) > 8 else "")
        lines.append(f"{label}  SKIPPED: {len(gaps)} input positions between taps are never read "
                     f"({shown}): stride or dilation leaves gaps.")
    return lines


def explain(
    size: IntOrTuple, kernel: IntOrTuple, stride: IntOrTuple | None = 1, padding: PaddingSpec = 0,
    dilation: IntOrTuple = 1, *, kind: str = "conv", ceil_mode: bool = False,
    output_padding: IntOrTuple = 0, convention: str = "torch",
) -> str:
    """The output-size computation written out, one block per axis.

    ``kind`` is ``"conv"``, ``"pool"`` (``stride=None`` means stride = kernel; ``ceil_mode``) or
    ``"transposed"``; ``convention`` is the pooling convention (``"torch"`` or ``"onnx"``,
    see :func:`~stridelab.arith.pool_output_size`). Floors are written as ``floor(...)``
    whenever they discard something, and the input positions no window reaches are listed.
    """
    if kind not in EXPLAIN_KINDS:
        raise ValueError(f"kind must be one of {EXPLAIN_KINDS}, got {kind!r}")
    if stride is None:
        stride = kernel if kind == "pool" else 1
    ndim = spatial_ndim(size, kernel, stride, dilation)
    sizes = per_axis("size", size, ndim, 1)
    ks = per_axis("kernel", kernel, ndim, 1)
    ss = per_axis("stride", stride, ndim, 1)
    ds = per_axis("dilation", dilation, ndim, 1)
    lines: list[str] = []
    if kind == "transposed":
        ops = per_axis("output_padding", output_padding, ndim, 0)
        out = transposed_output_size(sizes, ks, ss, padding, ds, ops)
        outs = out if isinstance(out, tuple) else (out,)
        pads = padding_pairs(0 if isinstance(padding, str) else padding, sizes, ks, ss, ds)
        for axis in range(ndim):
            label = f"axis {axis}: " if ndim > 1 else ""
            i, k, s, d, op, (pb, pa) = sizes[axis], ks[axis], ss[axis], ds[axis], ops[axis], pads[axis]
            k_eff = d * (k - 1) + 1
            lines.append(f"{label}({i} - 1)*{s} - ({pb} + {pa}) + {k_eff} + {op} = {outs[axis]}")
        return "\n".join(lines)
    pads = padding_pairs(padding, sizes, ks, ss, ds)
    if kind == "pool":
        out = pool_output_size(sizes, ks, ss, pads, ds, ceil_mode, convention)
    for axis in range(ndim):
        label = f"axis {axis}: " if ndim > 1 else ""
        if isinstance(padding, str):
            lines.append(f"{label}padding {padding!r} -> before {pads[axis][0]}, after {pads[axis][1]}")
        if kind == "pool" and ceil_mode:
            i, k, s, d = sizes[axis], ks[axis], ss[axis], ds[axis]
            pb, pa = pads[axis]
            k_eff = d * (k - 1) + 1
            span = i + pb + pa - k_eff
            o = -(-span // s) + 1
            lines.append(f"{label}ceil(({i} + {_pad_terms(pb, pa)} - {k_eff}) / {s}) + 1 = "
                         f"ceil({span} / {s}) + 1 = {o}")
            if (o - 1) * s >= i + pb:
                lines.append(f"{label}  the last window would start at {(o - 1) * s} >= {i} + {pb} "
                             f"(inside the right padding), so it is dropped: {o - 1}")
            continue
        lines.extend(_conv_axis(sizes[axis], ks[axis], ss[axis], pads[axis], ds[axis], label))
    return "\n".join(lines)
