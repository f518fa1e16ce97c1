"""``stridelab inspect MODEL --input 3x224x224``: per-layer stride, receptive field and cost.

MODEL is a built-in name (``stridelab.nn.presets``), ``package.module:attr`` or
``path/to/file.py:attr`` where ``attr`` is a module class or factory (called without arguments)
or a module instance. User code runs only because the user named it.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Any


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "inspect", help="per-layer stride, receptive field, cost and diagnostics of a model",
        description="Per-layer stride, receptive field, cost (MACs = FLOPs / 2) and diagnostics.")
    parser.add_argument("model", help="built-in name (e.g. resnet50), package.module:attr or "
                                      "path/to/file.py:attr (class or factory)")
    parser.add_argument("--input", default="3x224x224", metavar="CxHxW",
                        help="input size without the batch axis (default 3x224x224)")
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


def _attribute(namespace: Any, attr: str, where: str) -> Any:
    value = namespace
    for part in attr.split("."):
        if not hasattr(value, part):
            raise ValueError(f"model spec: {where} has no attribute {attr!r}")
        value = getattr(value, part)
    return value


def load_model(spec: str) -> Any:
    """Resolve a model spec (see the module docstring) to a ``torch.nn.Module``."""
    import torch

    if ":" in spec:
        target, attr = spec.rsplit(":", 1)
        if not attr:
            raise ValueError(f"model spec {spec!r} needs an attribute after ':'")
        if target.endswith(".py"):
            path = Path(target)
            if not path.is_file():
                raise ValueError(f"model spec: file {target!r} does not exist")
            module_spec = importlib.util.spec_from_file_location(f"_stridelab_user_{path.stem}",
                                                                 path)
            if module_spec is None or module_spec.loader is None:
                raise ValueError(f"model spec: cannot load {target!r} as Python")
            module = importlib.util.module_from_spec(module_spec)
            sys.modules[module_spec.name] = module
            module_spec.loader.exec_module(module)
        else:
            try:
                module = importlib.import_module(target)
            except ImportError as err:
                raise ValueError(f"model spec: cannot import {target!r} ({err})") from None
        factory = _attribute(module, attr, target)
    else:
        try:
            from stridelab.nn import presets
        except ImportError:
            raise ValueError(f"model {spec!r}: built-in models need stridelab.nn, which is not "
                             f"available; use package.module:attr or file.py:attr") from None
        if spec not in presets:
            raise ValueError(f"model must be a built-in name ({', '.join(sorted(presets))}), "
                             f"package.module:attr or file.py:attr; got {spec!r}")
        factory = presets[spec]
    model = factory if isinstance(factory, torch.nn.Module) else _call(factory, spec)
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model spec {spec!r} gave a {type(model).__name__}, not a "
                        f"torch.nn.Module")
    return model


def _call(factory: Any, spec: str) -> Any:
    if not callable(factory):
        raise TypeError(f"model spec {spec!r} names a {type(factory).__name__}; it must be a "
                        f"module class, a factory or a module instance")
    try:
        return factory()
    except TypeError as err:
        raise TypeError(f"model spec {spec!r}: calling it without arguments failed ({err})"
                        ) from None


def run(args: argparse.Namespace) -> int:
    from stridelab.inspect import inspect

    size = parse_input_size(args.input)
    if args.depth is not None and args.depth < 1:
        raise ValueError(f"--depth must be an int >= 1, got {args.depth}")
    model = load_model(args.model)
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
