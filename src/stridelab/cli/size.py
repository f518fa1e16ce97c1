"""``stridelab size``: output size of one layer, or a chain of layers with receptive fields."""

from __future__ import annotations

import argparse
import dataclasses
import json
from typing import Any

from stridelab import arith
from stridelab.cli._args import broadcast_padding, padding_arg, size_type
from stridelab.cli._table import render_table


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "size", help="output size of a conv / pool / transposed conv, or of a chain of layers",
        description="Exact output size, padding used, dropped pixels and receptive field.",
    )
    parser.add_argument("--input", required=True, type=size_type("--input"),
                        help="input size: 224, or 224x160 for 2-D")
    parser.add_argument("--kernel", type=size_type("--kernel"), help="kernel size (e.g. 3 or 3x5)")
    parser.add_argument("--stride", type=size_type("--stride"), default=None,
                        help="stride (default 1; pools: the kernel)")
    parser.add_argument("--padding", type=padding_arg, default=0,
                        help="int, valid, same, same-lower, B,A or per-axis joined by x")
    parser.add_argument("--dilation", type=size_type("--dilation"), default=1)
    parser.add_argument("--pool", action="store_true", help="pooling instead of convolution")
    parser.add_argument("--ceil", action="store_true", help="pooling with ceil_mode=True")
    parser.add_argument("--convention", choices=arith.POOL_CONVENTIONS, default="torch",
                        help="pooling rules: torch (padding <= kernel // 2, the default) or onnx "
                             "(any padding)")
    parser.add_argument("--transposed", action="store_true", help="transposed convolution")
    parser.add_argument("--output-padding", type=size_type("--output-padding"), default=0)
    parser.add_argument("--layers", help="a chain such as c7s2p3,m3s2p1,c3s2p1 (see docs)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--explain", action="store_true", help="show the arithmetic step by step")
    parser.set_defaults(run=run)


def _single_layer(args: argparse.Namespace) -> arith.Layer:
    if args.kernel is None:
        raise ValueError("--kernel is required unless --layers is given")
    if args.pool and args.transposed:
        raise ValueError("--pool and --transposed cannot be combined")
    if args.ceil and not args.pool:
        raise ValueError("--ceil applies only with --pool")
    if args.output_padding and not args.transposed:
        raise ValueError("--output-padding applies only with --transposed")
    kind = "maxpool" if args.pool else "transposed" if args.transposed else "conv"
    stride = args.stride if args.stride is not None or args.pool else 1
    return arith.Layer(kind=kind, kernel=args.kernel, stride=stride, padding=args.padding,
                       dilation=args.dilation, ceil_mode=args.ceil,
                       output_padding=args.output_padding, convention=args.convention)


def _axes(values: tuple[Any, ...]) -> str:
    return "x".join(str(v) for v in values)


def _pads(pairs: tuple[tuple[int, int], ...]) -> str:
    return "x".join(f"{b},{a}" if b != a else str(b) for b, a in pairs)


def step_record(step: arith.Step) -> dict[str, Any]:
    layer = step.layer
    field = step.field.to_dict()
    return {
        "kind": layer.kind, "kernel": layer.kernel, "stride": layer.effective_stride_arg,
        "dilation": layer.dilation, "input": list(step.input_size),
        "output": list(step.output_size), "padding": [list(p) for p in step.padding],
        "dropped": list(step.dropped), "receptive_field": field["size"],
        "effective_stride": field["stride"], "effective_padding": field["padding"],
    }


def run(args: argparse.Namespace) -> int:
    args.padding = broadcast_padding(args.padding, arith.spatial_ndim(args.input))
    if args.layers:
        if args.kernel is not None or args.pool or args.transposed:
            raise ValueError("--layers replaces --kernel/--pool/--transposed; give one or the other")
        layers = [dataclasses.replace(layer, convention=args.convention)
                  for layer in arith.parse_layers(args.layers)]
        names = [part.strip() for part in args.layers.split(",") if part.strip()]
    else:
        layers = [_single_layer(args)]
        names = [layers[0].kind]
    steps = arith.trace(args.input, layers)
    if args.json:
        records = [dict(step_record(s), name=n) for s, n in zip(steps, names)]
        print(json.dumps({"input": args.input, "layers": records}, indent=2))
        return 0
    header = ["layer", "in", "out", "padding (b,a)", "dropped", "RF", "eff. stride", "eff. pad"]
    rows = []
    for name, step in zip(names, steps):
        field = step.field
        rows.append([name, _axes(step.input_size), _axes(step.output_size), _pads(step.padding),
                     _axes(step.dropped), _axes(field.size), _axes(field.stride),
                     _axes(field.padding)])
    print(render_table(header, rows))
    if args.explain:
        for name, step in zip(names, steps):
            layer = step.layer
            kind = {"conv": "conv", "transposed": "transposed"}.get(layer.kind, "pool")
            print(f"\n{name}:")
            print(arith.explain(step.input_size, layer.kernel, layer.effective_stride_arg,
                                layer.padding, layer.dilation, kind=kind, ceil_mode=layer.ceil_mode,
                                output_padding=layer.output_padding,
                                convention=layer.convention))
    dropped = [(n, s) for n, s in zip(names, steps) if any(s.dropped)]
    for name, step in dropped:
        print(f"warning: {name} drops {_axes(step.dropped)} input pixel(s) at the end "
              f"(right/bottom): no window reaches them.")
    return 0
