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
