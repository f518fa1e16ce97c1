"""``python scripts/zoo``: inspect every torchvision and timm model and check the inspector.

A script, not a pytest suite: it must resume an interrupted run from its results file, kill a
worker that hangs on one model, recycle workers to return memory, and write docs/zoo.md; and
``make test`` (the shared venv, no timm) must not collect it. Results go to
``runs/zoo/results-<fingerprint>.jsonl``; the fingerprint covers the stridelab sources that are
imported and the torch / torchvision / timm versions, so changing the inspector starts afresh
while re-running an unchanged one resumes. Exit status 1 when any model fails outside the
allow-list (``scripts/zoo/allowlist.json``); one ``FAIL`` line per failing model.
"""

from __future__ import annotations

import argparse
import datetime
import fnmatch
import hashlib
import json
import os
import platform
import signal
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE))

from zoo_catalog import Entry, zoo_entries  # noqa: E402
from zoo_pool import read_results, run_pool  # noqa: E402
from zoo_summary import (  # noqa: E402
    KINDS,
    doc_text,
    failure_lines,
    findings_text,
    load_allowlist,
    summarise,
    write_atomic,
)

DEFAULT_TIMEOUT = 300.0
FIELD_TIMEOUT = 900.0


def _versions() -> dict[str, str]:
    import timm
    import torch
    import torchvision

    return {"torch": torch.__version__, "torchvision": torchvision.__version__,
            "timm": timm.__version__}


def fingerprint() -> str:
    """Hash of the imported stridelab sources and the library versions."""
    import stridelab

    digest = hashlib.sha256()
    package = Path(stridelab.__file__).parent
    for path in sorted(package.rglob("*.py")):
        digest.update(str(path.relative_to(package)).encode())
        digest.update(path.read_bytes())
    digest.update(repr(sorted(_versions().items())).encode())
    return digest.hexdigest()[:12]


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python scripts/zoo", description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=("timm", "torchvision"), help="one registry")
    parser.add_argument("--match", metavar="GLOB", help="specs matching GLOB (e.g. '*convnext*')")
    parser.add_argument("--specs", type=Path, metavar="FILE",
                        help="only the specs listed in FILE, one per line (e.g. the models an "
                             "earlier run captured by dispatch)")
    parser.add_argument("--limit", type=int, metavar="N", help="the first N models only")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--results", type=Path, help="results file (default: by fingerprint)")
    parser.add_argument("--fresh", action="store_true", help="ignore earlier results")
    parser.add_argument("--no-fields", action="store_true", help="skip the autograd sample")
    parser.add_argument("--doc", type=Path, help="write the summary (default docs/zoo.md for a "
                                                 "full run, nothing otherwise)")
    parser.add_argument("--findings", type=Path, help="write grouped failures (markdown)")
    parser.add_argument("--notes", type=Path, help="markdown put at the top of --findings "
                                                   "(hand-written analysis)")
    parser.add_argument("--rerun", metavar="KIND", choices=KINDS,
                        help="forget the results that failed this way and run only those again")
    parser.add_argument("--report-only", action="store_true",
                        help="run nothing: summarise the results file as it is (partial runs)")
    parser.add_argument("--label", help="name of the inspector under test (default: its git "
                                        "commit)")
    args = parser.parse_args(argv)
    if args.workers < 1 or (args.limit is not None and args.limit < 1):
        parser.error("--workers and --limit must be >= 1")
    return args


def _select(args: argparse.Namespace) -> list[Entry]:
    entries = zoo_entries(args.only)
    if args.match:
        entries = [e for e in entries if fnmatch.fnmatch(e.spec, args.match)]
    if args.specs:
        try:
            wanted = {line.strip() for line in args.specs.read_text().splitlines()
                      if line.strip()}
        except OSError as err:
            raise SystemExit(f"zoo: --specs: cannot read {args.specs}: {err.strerror}") from None
        entries = [e for e in entries if e.spec in wanted]
    if args.no_fields:
        entries = [Entry(e.spec, False) for e in entries]
    return entries[:args.limit] if args.limit else entries


def _progress(done: list[int], total: int, refresh: Any) -> Any:
    def report(item: dict[str, Any]) -> None:
        done[0] += 1
        if done[0] % 100 == 0:
            refresh()
        kinds = ",".join(sorted({k for k, _ in item["failures"]})) or "ok"
        inspect = item["times"].get("inspect")
        took = f"{inspect:.2f}s" if inspect is not None else "-"
        print(f"[{done[0]}/{total}] {item['spec']} {kinds} inspect {took} "
              f"total {item['times'].get('total', 0):.1f}s", flush=True)
    return report


def _exit_on_sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(143)  # so run_pool's finally stops the workers


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    args = _parse(argv)
    started = time.monotonic()
    entries = _select(args)
    print_id = fingerprint()
    results = args.results or ROOT / "runs" / "zoo" / f"results-{print_id}.jsonl"
    results.parent.mkdir(parents=True, exist_ok=True)
    if args.fresh and results.exists():
        results.unlink()
    done = read_results(results)
    if args.rerun:
        selected = {e.spec for e in entries}
        again = {spec for spec, item in done.items() if spec in selected
                 and any(kind == args.rerun for kind, _ in item["failures"])}
        write_atomic(results, "".join(json.dumps(item, sort_keys=True) + "\n"
                                      for spec, item in done.items() if spec not in again))
        done = {spec: item for spec, item in done.items() if spec not in again}
        entries_to_run = [e for e in entries if e.spec in again]
    else:
        entries_to_run = entries
    todo = [e for e in entries_to_run if e.spec not in done]
    print(f"zoo: {len(entries)} models, {len(entries) - len(todo)} already in {results}"
          + ("" if args.report_only else f", {len(todo)} to run on {args.workers} workers"),
          flush=True)
    counter = [len(entries) - len(todo)]
    wanted = {e.spec for e in entries}
    allowed = load_allowlist(HERE / "allowlist.json")
    label = f"{args.label} (fingerprint {print_id})" if args.label else _inspector_label(print_id)

    def collect() -> tuple[list[dict[str, Any]], dict[str, Any], dict[str, str]]:
        items = [item for spec, item in read_results(results).items() if spec in wanted]
        context = {**_versions(), "inspector": label,
                   "progress": f"{len(items)} of {len(entries)} models done",
                   "date": datetime.datetime.now(datetime.timezone.utc).strftime(
                       "%Y-%m-%d %H:%M UTC"),
                   "machine": f"{os.cpu_count()} cores, Python {platform.python_version()}",
                   "load": " / ".join(f"{v:.1f}" for v in os.getloadavg()),
                   "wall": "a summary of earlier results (--report-only)" if args.report_only
                   else f"{(time.monotonic() - started) / 60:.1f} min for this invocation "
                        f"({len(todo)} models run, {len(entries) - len(todo)} resumed)"}
        return items, summarise(items, allowed), context

    def refresh() -> None:
        if args.findings is not None:
            items, summary, context = collect()
            notes = args.notes.read_text() + "\n" if args.notes and args.notes.exists() else ""
            write_atomic(args.findings, notes + findings_text(items, summary, context))

    if not args.report_only:
        run_pool(todo, results, args.workers,
                 lambda e: FIELD_TIMEOUT if e.field_check else DEFAULT_TIMEOUT,
                 _progress(counter, len(entries), refresh))
    items, summary, context = collect()
    full = not (args.only or args.match or args.specs or args.limit or args.report_only)
    doc = args.doc or (ROOT / "docs" / "zoo.md" if full else None)
    if doc is not None:
        write_atomic(doc, doc_text(summary, context))
    refresh()
    for line in failure_lines(summary):
        print(line)
    print(f"zoo: {summary['models']} models, {summary['passed']} passed, "
          f"{summary['allowed']} allowed, {len(summary['failing'])} failing "
          f"{summary['by_kind']}; inspect {summary['inspect_time']}; autograd sample "
          f"{summary['sample_models']} models / {summary['sample_units']} units; "
          f"{summary['cpu_total_min']:.1f} CPU min")
    return 1 if summary["failing"] else 0


def _inspector_label(print_id: str) -> str:
    import stridelab

    source = Path(stridelab.__file__).resolve().parent.parent.parent
    head = source / ".git"
    label = str(source)
    if head.exists():
        try:
            import subprocess

            commit = subprocess.run(["git", "-C", str(source), "log", "-1", "--format=%h %s"],
                                    capture_output=True, text=True, timeout=10).stdout.strip()
            dirty = subprocess.run(["git", "-C", str(source), "status", "--short", "src"],
                                   capture_output=True, text=True, timeout=10).stdout.strip()
            label = f"{source.name}@{commit[:60]}{' +uncommitted' if dirty else ''}"
        except (OSError, subprocess.SubprocessError):
            pass
    return f"{label} (fingerprint {print_id})"


if __name__ == "__main__":
    sys.exit(main())
