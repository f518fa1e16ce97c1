"""``stridelab study``: train stride variants on real data and report the trade-offs."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

DEFAULTS_HELP = "(default: %(default)s)"


def _bounded(convert: Callable[[str], Any], lowest: float, strict: bool,
             wanted: str) -> Callable[[str], Any]:
    """An argparse ``type=``: ``convert`` the text, then require ``> lowest`` or ``>= lowest``."""
    def parse(text: str) -> Any:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {text!r}") from None
        if value < lowest or (strict and value == lowest) or value != value:  # NaN fails too
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {text!r}")
        return value
    return parse


_positive_int = _bounded(int, 1, False, "an integer >= 1")
_non_negative_int = _bounded(int, 0, False, "an integer >= 0")
_positive_float = _bounded(float, 0, True, "a number > 0")


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return value


def add_parser(subparsers: Any) -> None:
    from stridelab.study.config import StudyConfig

    d = StudyConfig().to_dict() | {"runs_dir": StudyConfig().runs_dir}

    parser = subparsers.add_parser(
        "study", help="train stride variants on real data and compare them",
        description="Train named stride variants of a small CIFAR-style ResNet, measure accuracy, "
                    "cost, latency, memory and shift-consistency (mean ± std over seeds), and "
                    "write runs/<name>/ (config, checkpoints, results.json, report.md/html). "
                    "Under torchrun, trains with DistributedDataParallel.")
    data = parser.add_argument_group("data")
    data.add_argument("--dataset", default=d["dataset"],
                      help="auto (digits for --task classify, scenes otherwise) | digits | "
                           "synthetic | cifar10:PATH | folder:PATH (class labels: classify only) "
                           "| scenes (generated digit scenes with masks and boxes) | coco:PATH "
                           "(a COCO-format folder) " + DEFAULTS_HELP)
    data.add_argument("--task", default=d["task"],
                      help="classify | segment | detect, or several comma-separated (segment and "
                           "detect need scenes or coco:PATH) " + DEFAULTS_HELP)
    data.add_argument("--canvas", type=_positive_int, default=d["canvas"],
                      help="scenes: canvas size in pixels; coco: images are resized to it "
                           + DEFAULTS_HELP)
    data.add_argument("--image-size", type=_positive_int, default=d["image_size"],
                      help="digits / folder / cifar10: images are resized to this square size "
                           + DEFAULTS_HELP)
    data.add_argument("--seed", type=_non_negative_int, default=d["seed"],
                      help="seed of the train/val/test split and of the first training run "
                           + DEFAULTS_HELP)
    data.add_argument("--train-limit", type=_positive_int, default=None,
                      help="use at most this many training images (quick runs)")
    model = parser.add_argument_group("variants")
    model.add_argument("--variants", default=d["variants"],
                       help="auto (each task's defaults) or comma-separated names; an item "
                            "TASK:NAME applies to that task only. classify: strided, maxpool, "
                            "avgpool, blurpool, space-to-depth, aggressive, no-downsampling, "
                            ".json/.toml plan files; scenes: os8|os16|os32 with -strided|-dilated, "
                            "-maxpool|-avgpool|-blurpool, segment -bilinear|-transposed|-skip "
                            "(e.g. os8-dilated-bilinear, os16-skip), detect fpn "
                            + DEFAULTS_HELP)
    model.add_argument("--depth", type=_positive_int, default=d["depth"],
                       help="ResNet depth 6n+2 (scenes: five stages of n blocks) " + DEFAULTS_HELP)
    model.add_argument("--width", type=_positive_int, default=d["width"],
                       help="channels of the first stage (then 2x, 4x) " + DEFAULTS_HELP)
    train = parser.add_argument_group("training")
    train.add_argument("--seeds", type=_positive_int, default=d["seeds"],
                       help="training runs per variant (seeds SEED, SEED+1, ...) " + DEFAULTS_HELP)
    train.add_argument("--epochs", type=_positive_int, default=d["epochs"], help=DEFAULTS_HELP)
    train.add_argument("--batch-size", type=_positive_int, default=d["batch_size"],
                       help="global batch size " + DEFAULTS_HELP)
    train.add_argument("--optimizer", choices=("sgd", "adamw"), default=d["optimizer"],
                       help=DEFAULTS_HELP)
    train.add_argument("--lr", type=_positive_float, default=d["lr"],
                       help="peak learning rate (cosine schedule) " + DEFAULTS_HELP)
    train.add_argument("--weight-decay", type=_non_negative_float, default=d["weight_decay"],
                       help=DEFAULTS_HELP)
    train.add_argument("--augment", choices=("none", "shift"), default=d["augment"],
                       help="training augmentation: random shifts of up to 2 px " + DEFAULTS_HELP)
    train.add_argument("--val-every", type=_positive_int, default=d["val_every"],
                       help="validate after every N-th epoch and after the last " + DEFAULTS_HELP)
    train.add_argument("--device", choices=("cpu", "cuda", "auto"), default=d["device"],
                       help=DEFAULTS_HELP)
    measure = parser.add_argument_group("measurements")
    measure.add_argument("--max-shift", type=_non_negative_int, default=d["max_shift"],
                         help="largest shift (px per axis) for shift-consistency " + DEFAULTS_HELP)
    measure.add_argument("--latency-repeats", type=_positive_int, default=d["latency_repeats"],
                         help=DEFAULTS_HELP)
    measure.add_argument("--no-effective-field", dest="effective_field", action="store_false",
                         help="skip the effective receptive field of each model (about 3 s "
                              "per model; its report section and column then say n/a)")
    runs = parser.add_argument_group("run folder")
    runs.add_argument("--name", default=d["name"], help="run name: runs/<name>/ " + DEFAULTS_HELP)
    runs.add_argument("--runs-dir", default=d["runs_dir"], help=DEFAULTS_HELP)
    mode = runs.add_mutually_exclusive_group()
    mode.add_argument("--resume", action="store_true",
                      help="continue an interrupted study in runs/<name>/ (same options)")
    mode.add_argument("--overwrite", action="store_true",
                      help="delete runs/<name>/ and start again")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from stridelab.study.config import StudyConfig
    from stridelab.study.progress import RichProgress
    from stridelab.study.report import format_summary
    from stridelab.study.runner import run_study

    config = StudyConfig(
        name=args.name, runs_dir=args.runs_dir, dataset=args.dataset, task=args.task,
        canvas=args.canvas, variants=args.variants,
        seeds=args.seeds, seed=args.seed, epochs=args.epochs, batch_size=args.batch_size,
        optimizer=args.optimizer, lr=args.lr, weight_decay=args.weight_decay,
        augment=args.augment, val_every=args.val_every, depth=args.depth, width=args.width,
        image_size=args.image_size,
        train_limit=args.train_limit, max_shift=args.max_shift,
        latency_repeats=args.latency_repeats, effective_field=args.effective_field,
        device=args.device,
    )
    console = Console(stderr=True)
    if args.quiet:
        results = run_study(config, resume=args.resume, overwrite=args.overwrite)
    else:
        with RichProgress(console) as progress:
            results = run_study(config, resume=args.resume, overwrite=args.overwrite,
                                progress=progress)
    if results is None:  # a non-zero rank of a distributed run
        return 0
    print(format_summary(results), end="")
    run_dir = config.run_dir
    print(f"report: {run_dir / 'report.html'} (also {run_dir / 'report.md'}, "
          f"{run_dir / 'results.json'})")
    return 0
