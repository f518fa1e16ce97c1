"""``stridelab erf MODEL --input CxHxW``: the effective receptive field of one unit (Luo et al. 2016).

MODEL is resolved as ``stridelab inspect`` does (a built-in name, ``package.module:attr`` or
``file.py:attr``). Prints centre, std, 68% / 95% extents and their ratio to the theoretical
field; ``--json`` prints the same as JSON; ``--plot erf.png`` draws the heatmap (theoretical box,
68% / 95% contours) and the radial profile.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "erf", help="effective receptive field of a unit (Luo et al. 2016) beside the theory",
        description="Mean |d unit / d input| over noise (or digits) inputs: centre, std, "
                    "68%% / 95%% extents, and the ratio to the theoretical receptive field.")
    parser.add_argument("model", help="built-in name (e.g. resnet18), package.module:attr or "
                                      "path/to/file.py:attr (class or factory)")
    parser.add_argument("--input", default="3x224x224", metavar="CxHxW",
                        help="input size without the batch axis (default 3x224x224)")
    parser.add_argument("--layer", default=None, metavar="NAME",
                        help="layer name from `stridelab inspect` (a module name means its last "
                             "operator); default: the last layer with a spatial map")
    parser.add_argument("--unit", default=None, metavar="I,J",
                        help="unit index per spatial axis (default: the centre of the map)")
    parser.add_argument("--samples", type=int, default=8, metavar="N",
                        help="inputs to average over (default 8)")
    parser.add_argument("--inputs", choices=("noise", "dataset"), default="noise",
                        help="N(0, 1) noise (default) or the bundled digits resized to the input")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda, ...")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--plot", metavar="PATH.png",
                        help="write the heatmap and radial profile as a PNG")
    parser.set_defaults(run=run)


def parse_unit(text: str | None) -> tuple[int, ...] | None:
    """``"3,4"`` -> (3, 4)."""
    if text is None:
        return None
    try:
        values = tuple(int(p) for p in text.replace("x", ",").split(","))
    except ValueError:
        values = ()
    if not values or any(v < 0 for v in values):
        raise ValueError(f"--unit must be ints >= 0 separated by commas, one per spatial axis "
                         f"(e.g. 3,4); got {text!r}")
    return values


def run(args: argparse.Namespace) -> int:
    from stridelab.cli.inspect_cmd import parse_input_size
    from stridelab.inspect.erf import effective_field
    from stridelab.inspect.registry import load_model

    size = parse_input_size(args.input)
    unit = parse_unit(args.unit)
    if args.samples < 1:
        raise ValueError(f"--samples must be an int >= 1, got {args.samples}")
    if args.plot and not args.plot.lower().endswith(".png"):
        raise ValueError(f"--plot must name a .png file, got {args.plot!r}")
    model = load_model(args.model, allow_code=True).model
    result = effective_field(model, size, layer=args.layer, unit=unit, inputs=args.inputs,
                             samples=args.samples, device=args.device)
    sys.stdout.write(result.to_json() if args.json else result.summary())
    if args.plot:
        from stridelab.viz.erf import effective_field_plot
        effective_field_plot(result, args.plot)
        print(f"wrote {args.plot}", file=sys.stderr)
    return 0
