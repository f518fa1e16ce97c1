"""``stridelab animate``: draw a 2-D (transposed) convolution step by step as a GIF or PNG strip.

    stridelab animate --input 5 --kernel 3 --stride 2 --padding 1 -o conv.gif
    stridelab animate --input 5x7 --kernel 3 --dilation 2 --values --format png -o conv.png
    stridelab animate --input 3 --kernel 3 --stride 2 --padding 1 --transposed \\
        --output-padding 1 -o up.gif

Sizes are ``5`` (both axes) or ``5x7`` (height x width). Geometry comes from
:mod:`stridelab.arith` through :func:`stridelab.viz.animate`; this module only parses arguments
and prints what was written.
"""

from __future__ import annotations

import argparse
from typing import Any

from stridelab import arith
from stridelab.arith import PaddingSpec
from stridelab.cli._args import broadcast_padding, padding_arg, size_type

FORMAT_CHOICES = ("gif", "png")


def animate_padding(text: str) -> PaddingSpec:
    """Padding for a 2-D animation.

    Same syntax as ``stridelab size`` (:func:`stridelab.cli._args.padding_arg`), with one 2-D
    reading: a bare ``B,A`` pair (no ``x``) means before ``B`` / after ``A`` on *both* axes, not
    ``B`` on the height axis and ``A`` on the width axis (write ``BxA`` for that).
    """
    return broadcast_padding(padding_arg(text), 2)


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "animate", help="draw a convolution step by step (GIF or PNG frame strip)",
        description="Animate a 2-D convolution or transposed convolution: padding cells, the "
                    "kernel footprint at each step (dilation gaps visible), the output cell being "
                    "written and the dropped border pixels.",
    )
    parser.add_argument("--input", required=True, type=size_type("--input"),
                        help="input size: 5, or 5x7 for height x width (at most 32 per axis)")
    parser.add_argument("--kernel", required=True, type=size_type("--kernel"),
                        help="kernel size (e.g. 3 or 3x2)")
    parser.add_argument("--stride", type=size_type("--stride"), default=1, help="default 1")
    parser.add_argument("--padding", type=animate_padding, default=0,
                        help="int, HxW, valid, same, same-lower, B,A (both axes) or "
                             "B,AxB,A (per axis); default 0")
    parser.add_argument("--dilation", type=size_type("--dilation"), default=1, help="default 1")
    parser.add_argument("--transposed", action="store_true",
                        help="transposed convolution (PyTorch's conv_transpose2d)")
    parser.add_argument("--output-padding", type=size_type("--output-padding"), default=0,
                        help="extra output rows / columns of a transposed conv (needs --transposed)")
    parser.add_argument("--values", action="store_true",
                        help="show a small worked example: inputs, weights, products and sums")
    parser.add_argument("--format", choices=FORMAT_CHOICES, default=None,
                        help="gif (animation) or png (frame strip); default: from the -o suffix")
    parser.add_argument("--frame-ms", type=int, default=700, help="milliseconds per GIF frame")
    parser.add_argument("-o", "--output", required=True, help="file to write (.gif or .png)")
    parser.set_defaults(run=run)


def _axes(values: tuple[int, ...]) -> str:
    return "x".join(str(v) for v in values)


def run(args: argparse.Namespace) -> int:
    from stridelab.viz import animate

    if args.output_padding and not args.transposed:
        raise ValueError("--output-padding applies only with --transposed")
    result = animate(
        args.input, args.kernel, args.stride, args.padding, args.dilation,
        transposed=args.transposed, output_padding=args.output_padding, values=args.values,
        path=args.output, format=args.format, frame_ms=args.frame_ms,
    )
    plan = result.plan
    spec = plan.spec
    frames = len(plan.frames)
    per = "input position" if spec.transposed else "output position"
    summary = f"{spec.describe()}; {frames} frames (one per {per})"
    if not spec.transposed:
        rows, cols = arith.dropped_pixels(spec.input_size, spec.kernel, spec.stride,
                                          spec.padding, spec.dilation)  # type: ignore[misc]
        summary += f"; dropped pixels: {len(plan.dropped)}"
        if plan.dropped:
            summary += f" (last {rows} rows, last {cols} columns)"
        unread_gaps = len(plan.unread - plan.dropped)
        if unread_gaps:
            summary += f", never read (gaps): {unread_gaps}"
    elif plan.unwritten:
        summary += f"; output cells written by no input: {len(plan.unwritten)}"
    print(f"wrote {result.path}")
    print(summary)
    return 0
