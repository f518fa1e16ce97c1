"""stridelab.nn speed on CPU: train-step throughput vs a plain PyTorch ResNet, and the
space-to-depth rewrite of the 7x7/2 stem vs the original conv.

Prints tables; asserts nothing about time. Steps of the two implementations are interleaved
(A, B, A, B, ...) so that load from other processes hits both alike; the median is reported.
Run: ``.venv/bin/python benchmarks/bench_nn.py [--batch 16 --size 224 --steps 4 --warmup 1]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from plain_resnet import plain_resnet18, plain_resnet50  # noqa: E402
from stridelab.nn import resnet18, resnet50, space_to_depth_conv  # noqa: E402


def train_step_fn(model: torch.nn.Module, batch: int, size: int) -> Callable[[], None]:
    x = torch.randn(batch, 3, size, size)
    y = torch.randint(0, 1000, (batch,))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    model.train()

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss: torch.Tensor = F.cross_entropy(model(x), y)
        torch.autograd.backward(loss)
        optimizer.step()

    return step


def interleaved(fns: list[Callable[[], None]], warmup: int, steps: int,
                cpu: list[list[float]] | None = None) -> list[list[float]]:
    """Wall seconds per call of each fn (one list per fn), calls interleaved round-robin.

    ``cpu``, if given, receives this process's CPU seconds per call (all threads): a proxy for
    the work done that is less disturbed by other processes competing for the cores.
    """
    for _ in range(warmup):
        for fn in fns:
            fn()
    times: list[list[float]] = [[] for _ in fns]
    if cpu is not None:
        cpu[:] = [[] for _ in fns]
    for _ in range(steps):
        for i, fn in enumerate(fns):
            start, start_cpu = time.perf_counter(), time.process_time()
            fn()
            times[i].append(time.perf_counter() - start)
            if cpu is not None:
                cpu[i].append(time.process_time() - start_cpu)
    return times


def bench_resnets(batch: int, size: int, warmup: int, steps: int) -> None:
    print(f"train step (forward + backward + SGD), batch {batch}, {size}x{size}, CPU, "
          f"{torch.get_num_threads()} threads, median of {steps}")
    print("img/s and ratio (stridelab / plain throughput) from the median wall-clock step; "
          "'best' from the fastest step; 'cpu' from median process CPU time (both less "
          "sensitive to other load on the machine)")
    print(f"{'model':<10}{'stridelab img/s':>17}{'plain img/s':>13}{'ratio':>8}{'best':>8}"
          f"{'cpu':>8}")
    for name, ours_fn, plain_fn in (("resnet18", resnet18, plain_resnet18),
                                    ("resnet50", resnet50, plain_resnet50)):
        torch.manual_seed(0)
        ours, plain = ours_fn(), plain_fn()
        plain.load_state_dict(ours.state_dict(), strict=True)  # same maths, same weights
        fns = [train_step_fn(ours, batch, size), train_step_fn(plain, batch, size)]
        cpu: list[list[float]] = []
        times_ours, times_plain = interleaved(fns, warmup, steps, cpu)
        t_ours, t_plain = statistics.median(times_ours), statistics.median(times_plain)
        best = min(times_plain) / min(times_ours)
        cpu_ratio = statistics.median(cpu[1]) / statistics.median(cpu[0])
        print(f"{name:<10}{batch / t_ours:>17.2f}{batch / t_plain:>13.2f}"
              f"{t_plain / t_ours:>8.3f}{best:>8.3f}{cpu_ratio:>8.3f}", flush=True)


def bench_stem(batch: int, size: int, warmup: int, steps: int) -> None:
    torch.manual_seed(0)
    stem = torch.nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
    rewritten = space_to_depth_conv(stem)
    x = torch.randn(batch, 3, size, size)
    with torch.no_grad():
        diff = (rewritten(x) - stem(x)).abs().max().item()
    rows = []
    for mode in ("forward", "forward+backward"):
        def run(module: torch.nn.Module, mode: str = mode) -> Callable[[], None]:
            def fn() -> None:
                if mode == "forward":
                    with torch.no_grad():
                        module(x)
                else:
                    torch.autograd.backward(module(x).sum())
            return fn
        times = interleaved([run(stem), run(rewritten)], warmup, steps * 3)
        t_conv, t_s2d = (statistics.median(t) for t in times)
        rows.append((mode, t_conv, t_s2d))
    print(f"\n7x7/2 stem (3 -> 64), batch {batch}, {size}x{size}: space_to_depth_conv vs Conv2d "
          f"(max abs diff {diff:.2e})")
    print(f"{'pass':<18}{'conv ms':>10}{'s2d ms':>10}{'s2d speed-up':>14}")
    for mode, t_conv, t_s2d in rows:
        print(f"{mode:<18}{t_conv * 1e3:>10.1f}{t_s2d * 1e3:>10.1f}{t_conv / t_s2d:>14.3f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--only", choices=("resnet", "stem"), default=None)
    args = parser.parse_args(argv)
    if args.only in (None, "resnet"):
        bench_resnets(args.batch, args.size, args.warmup, args.steps)
    if args.only in (None, "stem"):
        bench_stem(args.batch, args.size, args.warmup, args.steps)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
