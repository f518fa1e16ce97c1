"""Worker processes for the zoo: one model at a time each, a hard timeout per model, results
appended to a JSON-lines file by the parent only (one ``write`` per line, ``O_APPEND``), so an
interrupted run resumes where it stopped.

Workers are long-lived (importing torch, timm and torchvision costs seconds) and recycled after
:data:`TASKS_PER_WORKER` models to return memory; a worker that overruns its timeout or dies
(out of memory, a crash in C++) is killed and replaced, and the model is recorded as failed.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from collections.abc import Callable, Iterable
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from zoo_catalog import Entry

TASKS_PER_WORKER = 40


def _worker(conn: Connection) -> None:
    import torch

    torch.set_num_threads(1)
    from zoo_checks import check

    while True:
        task = conn.recv()
        if task is None:
            return
        spec, field_check = task
        conn.send(check(spec, field_check))


def read_results(path: Path) -> dict[str, dict[str, Any]]:
    """Results already written (a torn last line from a killed run is ignored)."""
    done: dict[str, dict[str, Any]] = {}
    if not path.exists():
        return done
    for line in path.read_text().splitlines():
        try:
            item = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(item, dict) and "spec" in item:
            done[item["spec"]] = item
    return done


def append_result(path: Path, item: dict[str, Any]) -> None:
    data = (json.dumps(item, sort_keys=True) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


class _Slot:
    """One worker process, its pipe, and the model it is working on."""

    def __init__(self, context: Any) -> None:
        self.parent, child = context.Pipe()
        self.process = context.Process(target=_worker, args=(child,), daemon=True)
        self.process.start()
        child.close()
        self.entry: Entry | None = None
        self.started = 0.0
        self.tasks = 0

    def give(self, entry: Entry) -> None:
        self.entry, self.started = entry, time.monotonic()
        self.tasks += 1
        self.parent.send((entry.spec, entry.field_check))

    def stop(self, kill: bool = False) -> None:
        if kill:
            self.process.kill()
        else:
            try:
                self.parent.send(None)
            except (BrokenPipeError, OSError):
                pass
        self.process.join(timeout=10)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.parent.close()


def run_pool(entries: Iterable[Entry], results: Path, workers: int,
             timeout: Callable[[Entry], float],
             report: Callable[[dict[str, Any]], None]) -> None:
    """Run ``entries`` on ``workers`` processes; append each result to ``results``."""
    context = multiprocessing.get_context("spawn")
    queue = list(entries)
    queue.reverse()
    slots = [_Slot(context) for _ in range(min(workers, len(queue)))]
    try:
        while any(slot.entry is not None for slot in slots) or queue:
            for index, slot in enumerate(slots):
                if slot.entry is None and queue:
                    if slot.tasks >= TASKS_PER_WORKER:
                        slot.stop()
                        slots[index] = slot = _Slot(context)
                    slot.give(queue.pop())
            busy = {slot.parent: slot for slot in slots if slot.entry is not None}
            for conn in wait(list(busy), timeout=1.0):
                slot = busy[conn]  # type: ignore[index]
                try:
                    item = conn.recv()  # type: ignore[union-attr]
                except (EOFError, OSError):
                    item = _lost(slot, "crash", f"worker died (exit code "
                                                f"{slot.process.exitcode})")
                    _replace(slots, slot, context)
                item["times"]["total"] = time.monotonic() - slot.started
                slot.entry = None
                append_result(results, item)
                report(item)
            for slot in list(slots):
                if slot.entry is not None and time.monotonic() - slot.started > timeout(slot.entry):
                    item = _lost(slot, "timeout", f"no result after {timeout(slot.entry):.0f} s")
                    item["times"]["total"] = time.monotonic() - slot.started
                    _replace(slots, slot, context, kill=True)
                    append_result(results, item)
                    report(item)
    finally:
        for slot in slots:
            slot.stop(kill=slot.entry is not None)


def _lost(slot: _Slot, kind: str, detail: str) -> dict[str, Any]:
    assert slot.entry is not None
    return {"spec": slot.entry.spec, "failures": [[kind, detail]], "times": {}}


def _replace(slots: list[_Slot], slot: _Slot, context: Any, kill: bool = False) -> None:
    slot.entry = None
    slot.stop(kill=kill)
    slots[slots.index(slot)] = _Slot(context)
