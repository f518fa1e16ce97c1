"""``stridelab solve``: every (kernel, stride, padding, dilation) that maps one size to another."""

from __future__ import annotations

import argparse
import json
from typing import Any

from stridelab import arith
from stridelab.cli._args import size_type
from stridelab.cli._table import render_table


def _int_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated ints, got {text!r}") from None


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "solve", help="find convolutions that map an input size to a target size",
        description="Every (kernel, stride, padding, dilation) reaching the target, best first: "
                    "no dropped pixels, symmetric padding, smallest kernel.",
    )
    parser.add_argument("--input", required=True, type=size_type("--input"))
    parser.add_argument("--output", required=True, type=size_type("--output"))
    parser.add_argument("--kernel", type=_int_list, default=(1, 2, 3, 5, 7),
                        help="kernel(s) to try, comma-separated (default 1,2,3,5,7)")
    parser.add_argument("--stride", type=_int_list, default=(1, 2, 3, 4),
                        help="stride(s) to try (default 1,2,3,4)")
    parser.add_argument("--dilation", type=_int_list, default=(1,), help="dilation(s) (default 1)")
    parser.add_argument("--limit", type=int, default=20, help="rows to print (default 20; 0: all)")
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.limit < 0:
        raise ValueError(f"--limit must be >= 0, got {args.limit}")
    answer = arith.solve(args.input, args.output, args.kernel, args.stride, args.dilation)
    per_axis = answer if isinstance(answer, tuple) else (answer,)
    if args.json:
        payload = [[s.to_dict() for s in axis] for axis in per_axis]
        print(json.dumps(payload[0] if not isinstance(answer, tuple) else payload, indent=2))
        return 0
    for axis, solutions in enumerate(per_axis):
        if len(per_axis) > 1:
            print(f"axis {axis}:")
        if not solutions:
            print(f"no convolution with these kernels/strides maps {args.input} to {args.output}")
            continue
        shown = solutions if args.limit == 0 else solutions[: args.limit]
        rows = [[s.kernel, s.stride, f"{s.padding[0]},{s.padding[1]}", s.dilation,
                 "yes" if s.symmetric else "no", s.dropped] for s in shown]
        print(render_table(["kernel", "stride", "padding (b,a)", "dilation", "symmetric",
                            "dropped"], rows))
        if len(shown) < len(solutions):
            print(f"... {len(solutions) - len(shown)} more (--limit 0 shows all)")
    return 0
