"""``stridelab inspect MODEL --input 3x224x224``: per-layer stride, receptive field and cost.

MODEL is a spec read by :func:`stridelab.inspect.registry.load_model`: a built-in name
(``stridelab.nn.presets``), ``timm:NAME``, ``torchvision:NAME`` (random weights, nothing is
downloaded), ``package.module:attr`` or ``path/to/file.py:attr`` where ``attr`` is a module class
or factory (called without arguments) or a module instance. User code runs only because the user
named it. ``--input`` defaults to the model's own size when the spec knows it, else 3x224x224.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "inspect", help="per-layer stride, receptive field, cost and diagnostics of a model",
        description="Per-layer stride, receptive field, cost (MACs = FLOPs / 2) and diagnostics.")
    parser.add_argument("model", help="built-in name (e.g. resnet50), timm:NAME, torchvision:NAME, "
                                      "package.module:attr or path/to/file.py:attr (class or "
                                      "factory)")
    parser.add_argument("--input", default=None, metavar="CxHxW",
                        help="input size without the batch axis (default: the model's own, "
                             "e.g. 3x299x299 for torchvision:inception_v3; else 3x224x224)")
    parser.add_argument("--batch-size", type=int, default=1, metavar="N")
    parser.add_argument("--depth", type=int, default=None, metavar="N",
                        help="fold layers nested deeper than N name parts into one row")
    fmt = parser.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="print the versioned JSON report")
    fmt.add_argument("--csv", action="store_true", help="print one CSV row per layer")
    fmt.add_argument("--md", action="store_true", help="print a Markdown table")
    parser.add_argument("--plot", metavar="PATH.png", help="write the receptive-field plot")
    parser.add_argument("--diagnose", action="store_true", help="list every diagnostic")
    parser.add_argument("--device", default="meta",
                        help="meta (default: shapes only, no memory), cpu, cuda, ...")
    parser.add_argument("--min-field", type=float, default=0.5, metavar="FRACTION",
                        help="warn when the head's field covers less of the input (default 0.5)")
    parser.add_argument("--verify", action="store_true",
                        help="check each sampled field against autograd (centre and corner units "
                             "of a sample of layers); with --json print the check as JSON; "
                             "exit 1 on a mismatch")
    parser.add_argument("--weights", choices=("random", "model"), default="random",
                        help="--verify: fresh weights with no zero gain (default) or the "
                             "model's own")
    parser.set_defaults(run=run)


def parse_input_size(text: str) -> tuple[int, ...]:
    """``3x224x224`` -> (3, 224, 224): channels then 1 to 3 spatial sizes."""
    parts = text.lower().replace(",", "x").split("x")
    try:
        values = tuple(int(p) for p in parts)
    except ValueError:
        values = ()
    if not 2 <= len(values) <= 4 or any(v < 1 for v in values):
        raise ValueError(f"--input must be CxHxW (channels then 1-3 spatial sizes, each >= 1), "
                         f"e.g. 3x224x224; got {text!r}")
    return values


def run(args: argparse.Namespace) -> int:
    from stridelab.inspect import inspect
    from stridelab.inspect.registry import DEFAULT_INPUT_SIZE, load_model

    size = parse_input_size(args.input) if args.input is not None else None
    if args.depth is not None and args.depth < 1:
        raise ValueError(f"--depth must be an int >= 1, got {args.depth}")
    loaded = load_model(args.model, allow_code=True)
    model = loaded.model
    size = size or loaded.input_size or DEFAULT_INPUT_SIZE
    report = inspect(model, size, batch_size=args.batch_size, device=args.device,
                     min_field_fraction=args.min_field)
    if args.verify:
        return _verify(args, report, model)
    if args.json:
        sys.stdout.write(report.to_json())
    elif args.csv:
        sys.stdout.write(report.to_csv())
    elif args.md:
        sys.stdout.write(report.to_markdown(args.depth, diagnostics=args.diagnose))
    else:
        sys.stdout.write(report.to_table(args.depth))
        if args.diagnose:
            for item in report.diagnostics:
                sys.stdout.write(f"{item}\n")
            if not report.diagnostics:
                sys.stdout.write("No diagnostics.\n")
    if args.plot:
        report.plot(args.plot)
        print(f"wrote {args.plot}", file=sys.stderr)
    return 0


def _verify(args: argparse.Namespace, report: Any, model: Any) -> int:
    """``--verify``: the report table (or nothing with ``--json``), then the check."""
    if args.csv or args.md:
        raise ValueError("--verify prints a table or, with --json, JSON; not --csv / --md")
    device = "cpu" if args.device == "meta" else args.device
    result = report.verify(model, weights=args.weights, device=device)
    if args.json:
        sys.stdout.write(result.to_json())
    else:
        sys.stdout.write(report.to_table(args.depth))
        sys.stdout.write(result.to_table())
    return 0 if result.ok else 1
