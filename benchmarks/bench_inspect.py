"""stridelab.inspect vs torchinfo.summary on ResNet-50 at 224x224 and 2048x2048 (same process).

Prints a table of wall time (best of 5 interleaved runs at 224, one run at 2048) and extra peak
memory (first run); never asserts on time. Peak memory is the
growth of the process's resident-set high-water mark (Linux: VmHWM, reset through
/proc/self/clear_refs before each run), which includes torch's C++ allocations; where that is
unavailable, tracemalloc's Python-only peak is shown instead. Targets from issue 5: <= 1.0x
torchinfo's time at 224, <= 0.1x at 2048, < 50 MB extra peak memory at 2048.
"""

from __future__ import annotations

import gc
import time
import tracemalloc
from collections.abc import Callable
from functools import partial
from pathlib import Path

import torch

from stridelab.inspect import inspect
from stridelab.nn import resnet50

STATUS = Path("/proc/self/status")
CLEAR_REFS = Path("/proc/self/clear_refs")


def _status_kb(key: str) -> int | None:
    try:
        for line in STATUS.read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    try:
        CLEAR_REFS.write_text("5")
        return True
    except OSError:
        return False


def measure(run: Callable[[], object]) -> tuple[float, float, str]:
    """(seconds, extra peak MB, how memory was measured) for one call of ``run``."""
    gc.collect()
    rss = _reset_peak() and _status_kb("VmRSS")
    if not rss:  # tracemalloc slows Python-heavy code, so it is used only as a fallback
        tracemalloc.start()
    start = time.perf_counter()
    run()
    seconds = time.perf_counter() - start
    hwm = _status_kb("VmHWM")
    if rss and hwm is not None:
        return seconds, (hwm - rss) / 1024, "RSS high-water mark"
    _, python_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return seconds, python_peak / 2**20, "tracemalloc (Python only)"


def _seconds(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def main() -> None:
    import torchinfo

    torch.set_num_threads(max(1, torch.get_num_threads()))
    model = resnet50().eval()
    # warm-up both tools (imports, FX, dispatcher caches) on a small input
    inspect(model, (3, 64, 64))
    torchinfo.summary(model, input_size=(1, 3, 64, 64), verbose=0)
    rows = []
    for side, repeats in ((224, 5), (2048, 1)):
        ours = measure(partial(inspect, model, (3, side, side)))
        theirs = measure(partial(torchinfo.summary, model, input_size=(1, 3, side, side),
                                 verbose=0))
        for _ in range(repeats - 1):  # best of `repeats`, interleaved: load hits both alike
            ours = (min(ours[0], _seconds(partial(inspect, model, (3, side, side)))),
                    *ours[1:])
            theirs = (min(theirs[0], _seconds(partial(
                torchinfo.summary, model, input_size=(1, 3, side, side), verbose=0))),
                *theirs[1:])
        rows.append((side, ours, theirs))
    print("ResNet-50, batch 1, CPU threads:", torch.get_num_threads())
    print(f"{'input':>10} {'inspect s':>10} {'torchinfo s':>12} {'ratio':>7} "
          f"{'inspect MB':>11} {'torchinfo MB':>13} {'target':>22}")
    for side, (t_ours, m_ours, how), (t_theirs, m_theirs, _how) in rows:
        target = "time <= 1.0x" if side == 224 else "time <= 0.1x, mem < 50 MB"
        print(f"{side:>5}x{side:<4} {t_ours:>10.3f} {t_theirs:>12.3f} {t_ours / t_theirs:>7.3f} "
              f"{m_ours:>11.1f} {m_theirs:>13.1f} {target:>22}  ({how})")


if __name__ == "__main__":
    main()
