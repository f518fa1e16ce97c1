"""Small datasets written in their real on-disk formats, and a hand-made results structure."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np


def write_cifar10(root: Path, per_batch: int = 20, seed: int = 0) -> dict[str, np.ndarray]:
    """CIFAR-10 python batches (data_batch_1..5, test_batch, batches.meta) with random pixels;
    returns the raw arrays written, keyed by file name."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    written = {}
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        data = rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8)
        labels = [int(i % 10) for i in range(per_batch)]
        with (root / name).open("wb") as handle:
            pickle.dump({b"batch_label": name.encode(), b"data": data, b"labels": labels,
                         b"filenames": [f"{i}.png".encode() for i in range(per_batch)]}, handle)
        written[name] = data
    with (root / "batches.meta").open("wb") as handle:
        pickle.dump({b"label_names": [b"airplane"] * 10, b"num_vis": 3072}, handle)
    return written


def fixed_results() -> dict[str, Any]:
    """A deterministic results structure (as run_study writes it) for report golden tests."""
    def variant(name: str, acc: list[float], cons: list[float], macs: int, stride: int,
                rf: int, lat: list[float], sizes: list[list[int]]) -> dict[str, Any]:
        seeds = []
        for i, (a, c, ms) in enumerate(zip(acc, cons, lat, strict=True)):
            seeds.append({"seed": i, "test_accuracy": a, "val_accuracy": a - 0.01,
                          "consistency": c, "latency_ms": ms, "throughput": 6400.0 / ms,
                          "peak_train_bytes": macs // 10, "train_seconds": 10.0 + i,
                          "memory_method": "CPU estimate"})
        return {"name": name, "source": "built-in",
                "plan": {"downsample": "stride", "stages": [{"stride": 1}, {"stride": 2}]},
                "feature_sizes": sizes,
                "static": {"params": 75_000 + macs // 1000, "macs": macs,
                           "activation_bytes": macs // 50, "receptive_field": [rf, rf],
                           "effective_stride": [stride, stride]},
                "seeds": seeds}

    from stridelab.study.results import mark_pareto, summarize

    variants = [
        variant("strided", [0.97, 0.98], [0.90, 0.92], 12_000_000, 4, 37, [1.5, 1.7],
                [[16, 32, 32], [16, 32, 32], [32, 16, 16], [64, 8, 8]]),
        variant("blurpool", [0.985, 0.975], [0.95, 0.96], 13_500_000, 4, 45, [2.0, 2.2],
                [[16, 32, 32], [16, 32, 32], [32, 16, 16], [64, 8, 8]]),
        variant("aggressive", [0.91, 0.93], [0.80, 0.78], 2_500_000, 16, 61, [0.8, 0.9],
                [[16, 32, 32], [16, 8, 8], [32, 4, 4], [64, 2, 2]]),
        variant("no-downsampling", [0.96, 0.965], [0.97, 0.975], 120_000_000, 1, 17,
                [9.0, 9.5], [[16, 32, 32], [16, 32, 32], [32, 32, 32], [64, 32, 32]]),
        variant("space-to-depth", [0.975, 0.985], [0.88, 0.9], 14_000_000, 34, 519, [1.2, 1.3],
                [[16, 32, 32], [16, 32, 32], [32, 16, 16], [64, 8, 8]]),
    ]
    variants[-1]["static"]["field_warning"] = "inspect reports 34, the maps shrink by 4"
    for entry in variants:
        entry["summary"] = summarize(entry["seeds"])
    results = {
        "stridelab_version": "0.1.0", "torch_version": "x", "device": "cpu", "world_size": 1,
        "threads": 2, "memory_method": "CPU estimate",
        "config": {"name": "golden", "dataset": "digits", "variants": "x", "seeds": 2, "seed": 0,
                   "epochs": 3, "batch_size": 64, "optimizer": "sgd", "lr": 0.05,
                   "weight_decay": 0.0005, "augment": "none", "depth": 8, "width": 16,
                   "image_size": 32, "train_limit": None, "max_shift": 4,
                   "latency_repeats": 20, "device": "cpu"},
        "dataset": {"name": "digits", "classes": [str(i) for i in range(10)], "in_channels": 1,
                    "image_size": [32, 32], "train": 1258, "val": 180, "test": 359},
        "variants": variants,
    }
    mark_pareto(results)
    return results


def fixed_scene_results() -> dict[str, Any]:
    """A hand-made results structure of a scenes run (classify, segment, detect) with numbers
    chosen so that each claim's verdict is known (see tests/study/test_claims.py)."""
    from stridelab.study.results import mark_pareto, summarize

    def variant(task: str, name: str, head_kind: str, stride: int, macs: int,
                metrics: dict[str, list[float]], downsample: str = "stride") -> dict[str, Any]:
        seeds = []
        for i in range(2):
            seed = {key: values[i] for key, values in metrics.items()}
            seed.update(seed=i, latency_ms=1.0 + stride / 32 + i * 0.1, throughput=1000.0,
                        peak_train_bytes=macs * 3 + i, train_seconds=5.0 + i,
                        memory_method="CPU estimate", effective_field=None)
            seeds.append(seed)
        return {"name": name, "task": task, "source": "built-in", "head_kind": head_kind,
                "head": f"output stride {stride}, {head_kind}",
                "plan": {"downsample": downsample, "output_stride": stride,
                         "stages": [{"stride": 2}] * 5},
                "feature_sizes": [[8, 64, 64], [64, 64 // stride, 64 // stride]],
                "static": {"params": 50_000, "macs": macs, "activation_bytes": macs // 10,
                           "receptive_field": [141, 141], "effective_stride": [stride, stride]},
                "seeds": seeds, "primary": {"classify": "mAP", "segment": "mIoU",
                                            "detect": "AP"}[task]}

    variants = [
        variant("classify", "os32-strided", "multilabel", 32, 3_800_000,
                {"mAP": [0.80, 0.82], "consistency": [0.80, 0.82]}),
        variant("classify", "os32-maxpool", "multilabel", 32, 4_100_000,
                {"mAP": [0.805, 0.815], "consistency": [0.85, 0.86]}, downsample="maxpool"),
        variant("classify", "os8-dilated", "multilabel", 8, 5_700_000,
                {"mAP": [0.84, 0.85], "consistency": [0.70, 0.72]}),
    ]
    seg = {"os8-dilated-bilinear": (8, 6_000_000, [0.60, 0.62], [0.60, 0.62], [0.40, 0.42]),
           "os16-dilated-bilinear": (16, 4_500_000, [0.55, 0.56], [0.50, 0.52], [0.30, 0.30]),
           "os32-strided-bilinear": (32, 4_000_000, [0.40, 0.42], [0.30, 0.32], [0.10, 0.12]),
           "os32-skip": (32, 5_000_000, [0.60, 0.61], [0.58, 0.60], [0.35, 0.37])}
    for name, (stride, macs, miou, bf1, small) in seg.items():
        variants.append(variant("segment", name, "skip" if "skip" in name else "bilinear", stride,
                                macs, {"mIoU": miou, "boundary_F1": bf1, "IoU_small": small,
                                       "IoU_medium": [0.6, 0.6], "IoU_large": [0.7, 0.7]}))
    det = {"os8-dilated": (8, "centernet@8", 5_800_000, [0.50, 0.52], [0.30, 0.32]),
           "os32-strided": (32, "centernet@32", 3_900_000, [0.30, 0.32], [0.05, 0.07]),
           "fpn": (8, "centernet@8/16/32", 4_300_000, [0.51, 0.52], [0.30, 0.31])}
    for name, (stride, kind, macs, ap, small) in det.items():
        variants.append(variant("detect", name, kind, stride if name != "fpn" else 32, macs,
                                {"AP": ap, "AP50": [0.8, 0.8], "AP75": [0.5, 0.5],
                                 "AP_small": small, "AP_medium": [0.5, 0.5],
                                 "AP_large": [0.6, 0.6]}))
    for entry in variants:
        entry["summary"] = summarize(entry["seeds"])
    results = {
        "stridelab_version": "0.1.0", "torch_version": "x", "device": "cpu", "world_size": 1,
        "threads": 2, "memory_method": "CPU estimate", "tasks": ["classify", "segment", "detect"],
        "config": {"name": "study", "dataset": "scenes", "task": "classify,segment,detect",
                   "variants": "auto", "canvas": 64, "seeds": 2, "seed": 0, "epochs": 3,
                   "batch_size": 32, "optimizer": "adamw", "lr": 0.003, "weight_decay": 0.0005,
                   "augment": "none", "depth": 8, "width": 8, "image_size": 32,
                   "train_limit": 400, "max_shift": 4, "latency_repeats": 5, "device": "cpu"},
        "dataset": {"name": "scenes (64x64)", "classes": [str(i) for i in range(10)],
                    "in_channels": 1, "image_size": [64, 64], "train": 400, "val": 100,
                    "test": 150},
        "variants": variants,
    }
    mark_pareto(results)
    return results
