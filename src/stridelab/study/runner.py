"""Run a whole study: every variant x every seed, train (resumably), measure, aggregate, report."""

from __future__ import annotations

import copy
import time
from typing import Any

import torch

from stridelab._version import __version__
from stridelab.study import distributed as ddp
from stridelab.study.config import StudyConfig
from stridelab.study.data import Splits, load_dataset
from stridelab.study.erf import SAMPLES, effective_field_entry
from stridelab.study.measure import (
    field_warning,
    latency_ms,
    shift_consistency,
    static_costs,
    throughput,
    training_memory,
)
from stridelab.study.results import mark_pareto, summarize
from stridelab.study.runs import (
    atomic_write_json,
    prepare_run_dir,
    read_json,
    seed_dir,
)
from stridelab.study.train import (
    ProgressHook,
    SilentProgress,
    accuracy,
    seed_everything,
    train_model,
)
from stridelab.study.variants import Variant, resolve_variants


def run_study(config: StudyConfig, *, resume: bool = False, overwrite: bool = False,
              progress: ProgressHook | None = None) -> dict[str, Any] | None:
    """Run (or continue) the study; returns the results on rank 0 and None on other ranks.

    Writes ``config.json``, checkpoints, per-seed ``result.json``, ``results.json`` and the
    report into ``config.run_dir``.
    """
    config.validate()
    device = ddp.resolve_device(config.device, int(_env_int("LOCAL_RANK")))
    splits = load_dataset(config.dataset, image_size=config.image_size, seed=config.seed,
                          train_limit=config.train_limit)
    input_hw = splits.image_size
    variants = resolve_variants(config.variants, depth=config.depth, width=config.width,
                                input_size=input_hw)
    info = ddp.setup(device)
    try:
        torch.use_deterministic_algorithms(True, warn_only=True)
        _prepare(config, info, device, resume=resume, overwrite=overwrite)
        hook = progress if (progress is not None and info.is_main) else SilentProgress()
        entries = [_run_variant(config, variant, splits, device, info, hook)
                   for variant in variants]
        if not info.is_main:
            return None
        from stridelab.study.report import write_report

        results = _assemble(config, splits, device, info, entries)
        atomic_write_json(config.run_dir / "results.json", results)
        write_report(results, config.run_dir)
        return results
    finally:
        ddp.teardown(info)


def _env_int(name: str) -> int:
    import os

    return int(os.environ.get(name, "0") or 0)


def _prepare(config: StudyConfig, info: ddp.DistInfo, device: torch.device, *, resume: bool,
             overwrite: bool) -> None:
    failure: Exception | None = None
    if info.is_main:
        try:
            prepare_run_dir(config.run_dir, config.to_dict(), resume=resume, overwrite=overwrite)
        except Exception as err:  # re-raised below, after telling the other ranks
            failure = err
    ok = ddp.broadcast_flag(failure is None, info, device)
    if failure is not None:
        raise failure
    if not ok:
        raise ValueError(f"rank 0 could not prepare the run folder {str(config.run_dir)!r}")


def _run_variant(config: StudyConfig, variant: Variant, splits: Splits, device: torch.device,
                 info: ddp.DistInfo, progress: ProgressHook) -> dict[str, Any]:
    input_size = (splits.in_channels, *splits.image_size)
    reference = variant.build(num_classes=splits.num_classes, in_channels=splits.in_channels)
    feature_sizes = [(int(c), int(h), int(w)) for c, h, w in variant.plan.output_sizes(input_size)]
    entry: dict[str, Any] = {
        "name": variant.name, "source": variant.source, "plan": variant.plan.to_dict(),
        "feature_sizes": [list(s) for s in feature_sizes], "static": {}, "seeds": [],
    }
    if info.is_main:
        entry["static"] = static_costs(reference, input_size)
        warning = field_warning(entry["static"], input_size, feature_sizes[-1])
        if warning:
            entry["static"]["field_warning"] = warning
    for seed in config.seed_list():
        directory = seed_dir(config.run_dir, variant.name, seed)
        result_path = directory / "result.json"
        done = ddp.broadcast_flag(result_path.is_file(), info, device)
        if done:
            if info.is_main:
                entry["seeds"].append(read_json(result_path))
            continue
        seed_everything(seed)
        model = variant.build(num_classes=splits.num_classes, in_channels=splits.in_channels)
        initial = copy.deepcopy(model) if info.is_main else None  # for its effective field
        outcome = train_model(model, splits, config.train_settings(), seed=seed,
                              directory=directory, device=device, info=info,
                              progress=progress, label=f"{variant.name} seed {seed}")
        if info.is_main:
            result = _measure(config, outcome.model, splits, device, input_size)
            assert initial is not None
            result["effective_field"] = effective_field_entry(
                initial, outcome.model, splits.normalize(splits.test_x[:SAMPLES]), device)
            result.update(seed=seed, train_seconds=outcome.train_seconds,
                          resumed_from_epoch=outcome.resumed_from_epoch,
                          history=outcome.history)
            atomic_write_json(result_path, result)
            entry["seeds"].append(result)
        ddp.barrier(info)
    return entry


def _measure(config: StudyConfig, model: torch.nn.Module, splits: Splits, device: torch.device,
             input_size: tuple[int, int, int]) -> dict[str, Any]:
    started = time.perf_counter()
    result: dict[str, Any] = {
        "test_accuracy": accuracy(model, splits.test_x, splits.test_y, splits, device),
        "val_accuracy": accuracy(model, splits.val_x, splits.val_y, splits, device),
        "consistency": shift_consistency(model, splits, device, max_shift=config.max_shift,
                                         seed=config.seed),
        "latency_ms": latency_ms(model, input_size, device, repeats=config.latency_repeats),
        "throughput": throughput(model, input_size, device),
    }
    result.update(training_memory(model, splits, config.train_settings(), device))
    result["measure_seconds"] = time.perf_counter() - started
    return result


def _assemble(config: StudyConfig, splits: Splits, device: torch.device, info: ddp.DistInfo,
              entries: list[dict[str, Any]]) -> dict[str, Any]:
    for entry in entries:
        entry["summary"] = summarize(entry["seeds"])
    methods = sorted({r["memory_method"] for e in entries for r in e["seeds"]})
    results: dict[str, Any] = {
        "stridelab_version": __version__, "torch_version": torch.__version__,
        "config": config.to_dict(), "dataset": splits.summary(), "device": str(device),
        "world_size": info.world_size, "threads": torch.get_num_threads(),
        "memory_method": "; ".join(methods), "variants": entries,
    }
    mark_pareto(results)
    return results
