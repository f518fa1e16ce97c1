"""Run a whole study: every task x variant x seed, train (resumably), measure, aggregate, report.

Run folder: ``<variant>/seed-<s>/`` for ``classify`` (as before) and ``<task>/<variant>/seed-<s>/``
for ``segment`` and ``detect``. Scene data is generated once per process and shared by the tasks.
"""

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
from stridelab.study.tasks import resolve_task_variants
from stridelab.study.tasks.scene_data import SceneSplits, load_scene_splits
from stridelab.study.tasks.scene_tasks import PRIMARY, SceneTask, make_task
from stridelab.study.train import (
    ProgressHook,
    SilentProgress,
    accuracy,
    seed_everything,
    train_model,
)

# Options added after run folders already existed, with the value of the older behaviour
# (validation after every epoch, effective field measured): such folders still --resume.
ADDED_OPTIONS: dict[str, Any] = {"val_every": 1, "effective_field": True}


def run_study(config: StudyConfig, *, resume: bool = False, overwrite: bool = False,
              progress: ProgressHook | None = None) -> dict[str, Any] | None:
    """Run (or continue) the study; returns the results on rank 0 and None on other ranks.

    Writes ``config.json``, checkpoints, per-seed ``result.json``, ``results.json`` and the
    report into ``config.run_dir``.
    """
    config.validate()
    tasks = config.task_list()
    device = ddp.resolve_device(config.device, int(_env_int("LOCAL_RANK")))
    data: Splits | SceneSplits
    if config.scene_dataset:
        data = load_scene_splits(config.dataset_spec, canvas=config.canvas, seed=config.seed,
                                 train_limit=config.train_limit)
    else:
        data = load_dataset(config.dataset_spec, image_size=config.image_size, seed=config.seed,
                            train_limit=config.train_limit)
    plan = {task: resolve_task_variants(task, config.variants, tasks,
                                        scenes=config.scene_dataset, depth=config.depth,
                                        width=config.width, input_size=data.image_size)
            for task in tasks}
    info = ddp.setup(device)
    try:
        torch.use_deterministic_algorithms(True, warn_only=True)
        _prepare(config, info, device, resume=resume, overwrite=overwrite)
        hook = progress if (progress is not None and info.is_main) else SilentProgress()
        objectives: dict[tuple[str, tuple[int, ...]], SceneTask] = {}
        entries = [_run_variant(config, task, variant, data, device, info, hook, objectives)
                   for task in tasks for variant in plan[task]]
        if not info.is_main:
            return None
        from stridelab.study.report import write_report

        results = _assemble(config, data, device, info, entries)
        if isinstance(data, SceneSplits):
            from stridelab.study.pictures import write_pictures

            results["pictures"] = write_pictures(config, data, plan, results, device)
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
            prepare_run_dir(config.run_dir, config.to_dict(), resume=resume, overwrite=overwrite,
                            added_options=ADDED_OPTIONS)
        except Exception as err:  # re-raised below, after telling the other ranks
            failure = err
    ok = ddp.broadcast_flag(failure is None, info, device)
    if failure is not None:
        raise failure
    if not ok:
        raise ValueError(f"rank 0 could not prepare the run folder {str(config.run_dir)!r}")


def variant_dir(config: StudyConfig, task: str, variant: str, seed: int) -> Any:
    """``<variant>/seed-<s>`` for classify, ``<task>/<variant>/seed-<s>`` for the others."""
    base = config.run_dir if task == "classify" else config.run_dir / task
    return seed_dir(base, variant, seed)


def task_objective(task: str, variant: Any, data: Splits | SceneSplits,
                   cache: dict[tuple[str, tuple[int, ...]], SceneTask]) -> Splits | SceneTask:
    """What a variant of ``task`` trains on (scene objectives are kept in ``cache``)."""
    if isinstance(data, Splits):
        return data
    levels = tuple(getattr(variant, "levels", ()))
    key = (task, levels if task == "detect" else ())
    if key not in cache:
        cache[key] = make_task(task, data, levels=levels)
    return cache[key]


def _static(model: torch.nn.Module, input_size: tuple[int, int, int]) -> dict[str, Any]:
    """Costs of the whole model; receptive field and stride of the backbone's last feature map
    (the output stride) when the model has a backbone."""
    static = static_costs(model, input_size)
    backbone = getattr(model, "backbone", None)
    if backbone is not None:
        field = static_costs(backbone, input_size)
        static["receptive_field"] = field["receptive_field"]
        static["effective_stride"] = field["effective_stride"]
    return static


def effective_field(initial: torch.nn.Module | None, trained: torch.nn.Module,
                    data: Splits | SceneSplits, device: torch.device) -> dict[str, Any]:
    """Effective receptive field (Luo et al. 2016) of the variant at initialisation and after
    training, on the first :data:`~stridelab.study.erf.SAMPLES` normalised test images
    (:func:`stridelab.study.erf.effective_field_entry`)."""
    if initial is None:
        raise ValueError("effective_field needs the untrained model (config.effective_field)")
    return effective_field_entry(initial, trained, data.normalize(data.test_x[:SAMPLES]), device)


def _run_variant(config: StudyConfig, task: str, variant: Any, data: Splits | SceneSplits,
                 device: torch.device, info: ddp.DistInfo,
                 progress: ProgressHook,
                 objectives: dict[tuple[str, tuple[int, ...]], SceneTask]) -> dict[str, Any]:
    input_size = (data.in_channels, *data.image_size)
    num_classes = data.num_classes
    reference = variant.build(num_classes=num_classes, in_channels=data.in_channels)
    feature_sizes = [(int(c), int(h), int(w)) for c, h, w in variant.plan.output_sizes(input_size)]
    describe = getattr(variant, "describe", None)
    entry: dict[str, Any] = {
        "name": variant.name, "task": task, "source": variant.source,
        "plan": variant.plan.to_dict(), "head": describe() if describe else "classifier",
        "head_kind": getattr(variant, "head_kind", "classifier"),
        "feature_sizes": [list(s) for s in feature_sizes], "static": {}, "seeds": [],
    }
    if info.is_main:
        entry["static"] = _static(reference, input_size)
        warning = field_warning(entry["static"], input_size, feature_sizes[-1])
        if warning:
            entry["static"]["field_warning"] = warning
    objective = task_objective(task, variant, data, objectives)
    for seed in config.seed_list():
        directory = variant_dir(config, task, variant.name, seed)
        result_path = directory / "result.json"
        done = ddp.broadcast_flag(result_path.is_file(), info, device)
        if done:
            if info.is_main:
                entry["seeds"].append(read_json(result_path))
            continue
        seed_everything(seed)
        model = variant.build(num_classes=num_classes, in_channels=data.in_channels)
        # the untrained model, for its effective field
        initial = copy.deepcopy(model) if info.is_main and config.effective_field else None
        label = variant.name if task == "classify" else f"{task} {variant.name}"
        outcome = train_model(model, objective, config.train_settings(), seed=seed,
                              directory=directory, device=device, info=info,
                              progress=progress, label=f"{label} seed {seed}")
        if info.is_main:
            result = _measure(config, outcome.model, objective, device, input_size)
            result.update(seed=seed, train_seconds=outcome.train_seconds,
                          resumed_from_epoch=outcome.resumed_from_epoch,
                          history=outcome.history)
            if config.effective_field:
                result["effective_field"] = effective_field(initial, outcome.model, data,
                                                            device)
            atomic_write_json(result_path, result)
            entry["seeds"].append(result)
        ddp.barrier(info)
    return entry


def _measure(config: StudyConfig, model: torch.nn.Module, objective: Splits | SceneTask,
             device: torch.device, input_size: tuple[int, int, int]) -> dict[str, Any]:
    started = time.perf_counter()
    if isinstance(objective, Splits):
        splits = objective
        result: dict[str, Any] = {
            "test_accuracy": accuracy(model, splits.test_x, splits.test_y, splits, device),
            "val_accuracy": accuracy(model, splits.val_x, splits.val_y, splits, device),
            "consistency": shift_consistency(model, splits, device, max_shift=config.max_shift,
                                             seed=config.seed),
        }
    else:
        result = objective.evaluate(model, device, max_shift=config.max_shift, seed=config.seed)
    result["latency_ms"] = latency_ms(model, input_size, device, repeats=config.latency_repeats)
    result["throughput"] = throughput(model, input_size, device)
    result.update(training_memory(model, objective, config.train_settings(), device))
    result["measure_seconds"] = time.perf_counter() - started
    return result


def primary_metric(task: str, data: Splits | SceneSplits) -> str:
    """The metric a task is ranked by (Pareto front, highlights)."""
    return "test_accuracy" if isinstance(data, Splits) else PRIMARY[task]


def _assemble(config: StudyConfig, data: Splits | SceneSplits, device: torch.device,
              info: ddp.DistInfo, entries: list[dict[str, Any]]) -> dict[str, Any]:
    for entry in entries:
        entry["summary"] = summarize(entry["seeds"])
        entry["primary"] = primary_metric(entry["task"], data)
    methods = sorted({r["memory_method"] for e in entries for r in e["seeds"]})
    summary = data.summary()
    results: dict[str, Any] = {
        "stridelab_version": __version__, "torch_version": torch.__version__,
        "config": config.to_dict(), "dataset": summary, "device": str(device),
        "world_size": info.world_size, "threads": torch.get_num_threads(),
        "memory_method": "; ".join(methods), "tasks": config.task_list(), "variants": entries,
    }
    mark_pareto(results)
    from stridelab.study.claims import evaluate_claims

    results["claims"] = evaluate_claims(results)
    return results
