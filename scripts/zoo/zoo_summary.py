"""Counting the zoo's results: failures (minus the allow-list), times, docs/zoo.md and the
grouped findings file the inspector's maintainers read."""

from __future__ import annotations

import json
import os
import re
import statistics
import tempfile
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

KINDS = ("build", "exception", "timeout", "crash", "oracle", "macs", "params", "diagnostic",
         "field")


def load_allowlist(path: Path) -> dict[tuple[str, str], dict[str, str]]:
    """``[{"spec", "kind", "error", "reason"}, ...]`` keyed by (spec, kind); every entry must give
    the exact error and a reason."""
    entries = json.loads(path.read_text()) if path.exists() else []
    allowed = {}
    for entry in entries:
        missing = {"spec", "kind", "error", "reason"} - set(entry)
        if missing or not entry["reason"].strip():
            raise ValueError(f"{path}: entry {entry} needs spec, kind, error and a reason")
        allowed[(entry["spec"], entry["kind"])] = entry
    return allowed


def open_failures(item: dict[str, Any], allowed: dict[tuple[str, str], dict[str, str]]
                  ) -> list[list[str]]:
    """Failures of one result not covered by an allow-list entry with the exact error."""
    out = []
    for kind, detail in item["failures"]:
        entry = allowed.get((item["spec"], kind))
        if entry is None or entry["error"] != detail:
            out.append([kind, detail])
    return out


def _stats(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{statistics.median(values):.2f} s median, {max(values):.2f} s max"


def summarise(results: Iterable[dict[str, Any]],
              allowed: dict[tuple[str, str], dict[str, str]]) -> dict[str, Any]:
    items = list(results)
    failing = {i["spec"]: open_failures(i, allowed) for i in items}
    failing = {spec: f for spec, f in failing.items() if f}
    by_kind: dict[str, int] = defaultdict(int)
    for failures in failing.values():
        for kind in {k for k, _ in failures}:
            by_kind[kind] += 1
    sample = [i for i in items if "field_units" in i or any(k == "field" for k, _ in i["failures"])]
    inspect_times = [i["times"]["inspect"] for i in items if "inspect" in i["times"]]
    inspect_cpu = [i["times"]["inspect_cpu"] for i in items if "inspect_cpu" in i["times"]]
    cpu = [i["times"]["cpu"] for i in items if "cpu" in i["times"]]
    slowest = max(items, key=lambda i: i["times"].get("inspect", 0.0), default=None)
    return {
        "models": len(items),
        "by_source": {s: sum(i["spec"].startswith(s + ":") for i in items)
                      for s in ("torchvision", "timm")},
        "passed": len(items) - len(failing),
        "allowed": sum(1 for i in items if i["failures"] and i["spec"] not in failing),
        "failing": failing,
        "by_kind": dict(by_kind),
        "sample_models": len(sample),
        "sample_units": sum(i.get("field_units", 0) for i in sample),
        "sample_failed_units": sum(sum(k == "field" for k, _ in failing.get(i["spec"], []))
                                   for i in sample),
        "inspect_time": _stats(inspect_times),
        "inspect_over_3s": sum(t > 3 for t in inspect_times),
        "slowest": (slowest["spec"], slowest["times"].get("inspect", 0.0)) if slowest else None,
        "inspect_cpu": _stats(inspect_cpu),
        "inspect_cpu_over_3s": sum(t > 3 for t in inspect_cpu),
        "cpu_total_min": sum(cpu) / 60,
        "total_time": _stats([i["times"]["total"] for i in items if "total" in i["times"]]),
        "field_time": _stats([i["times"]["field"] for i in items if "field" in i["times"]]),
        "dispatch": sorted(i["spec"] for i in items if i.get("capture") == "dispatch"),
    }


def failure_lines(summary: dict[str, Any]) -> list[str]:
    lines = []
    for spec, failures in sorted(summary["failing"].items()):
        kinds = sorted({k for k, _ in failures})
        first = failures[0][1]
        more = f" (+{len(failures) - 1} more)" if len(failures) > 1 else ""
        lines.append(f"FAIL {spec} [{','.join(kinds)}] {first}{more}")
    return lines


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def doc_text(summary: dict[str, Any], context: dict[str, str]) -> str:
    kinds = summary["by_kind"]
    rows = "\n".join(f"| {kind} | {kinds.get(kind, 0)} |" for kind in KINDS)
    failing = "\n".join(f"- `{line[5:]}`" for line in failure_lines(summary)[:60]) or "None."
    slow = summary["slowest"]
    sources = summary["by_source"]
    models = f"{summary['models']} (torchvision {sources['torchvision']}, timm {sources['timm']})"
    sample = (f"{summary['sample_models']} models, {summary['sample_units']} units, "
              f"{summary['sample_failed_units']} mismatched")
    return f"""# The model zoo

`make zoo` builds `.venv-zoo` (torch {context['torch']}, torchvision {context['torchvision']},
timm {context['timm']}) and runs `scripts/zoo`: every torchvision model and every timm model is
inspected on meta tensors at its default input size (see `scripts/zoo/zoo_catalog.py` for what is
inspected of detection and optical-flow models), two worker processes, one result line per model
in `runs/zoo/` (an interrupted run resumes). It checks: no exception (allow-list with the exact
error and a reason: `scripts/zoo/allowlist.json`); MACs = `FlopCounterMode` FLOPs / 2 of the same
eval forward; per-layer parameters sum to the parameters the forward uses (= the unique count
when it uses all); no `unused-parameters` note when every parameter is used and no `small-field`
warning on a model that runs attention; and for a fixed sample of convolutional models without
global operators, `report.verify` on CPU with re-randomised weights (centre and corner units of
up to 8 layers: the gradient box lies inside the field and meets its unclipped edges).

Last run: {context['date']}, inspector {context['inspector']}; {context.get('progress', '')}.

| | count |
|---|---|
| models | {models} |
| passed | {summary['passed']} |
| allowed failures (allow-list) | {summary['allowed']} |
| failing | {len(summary['failing'])} |
| autograd sample | {sample} |
| captured by the dispatch fallback (not FX) | {len(summary['dispatch'])} |

Failing models per kind (a model can fail several ways):

| kind | models |
|---|---|
{rows}

Time per model, one torch thread per worker. CPU time (independent of other load on the
machine): `inspect` alone {summary['inspect_cpu']} ({summary['inspect_cpu_over_3s']} models over
3 s); all checks of all models {summary['cpu_total_min']:.1f} CPU minutes, i.e. about
{summary['cpu_total_min'] / 2:.0f} minutes on 2 dedicated cores plus worker start-up. Wall time
as measured: `inspect` {summary['inspect_time']} (slowest: `{slow[0] if slow else '-'}`,
{slow[1] if slow else 0:.2f} s); everything for one model (build, inspect, oracle, field check)
{summary['total_time']}; the autograd check alone {summary['field_time']}. This invocation:
{context['wall']}; machine: {context['machine']}, load average {context.get('load', '?')}.

## Failures

{failing}
"""


def _normalise(detail: str) -> str:
    detail = re.sub(r"\d[\d,]*", "N", detail)
    return re.sub(r"'[^']*'", "'…'", detail)[:160]


def findings_text(results: Iterable[dict[str, Any]], summary: dict[str, Any],
                  context: dict[str, str]) -> str:
    """Failures grouped by kind and by message shape, with example models; then diagnostics."""
    items = list(results)
    out = [f"# Zoo findings ({context['date']}, inspector {context['inspector']})", "",
           f"{context.get('progress', '')}; torch {context['torch']}, torchvision "
           f"{context['torchvision']}, timm {context['timm']}. Rerun: `PYTHONPATH=<tree>/src "
           f"/work/zoo-venv/bin/python /work/wt/zoo/scripts/zoo --findings FILE` "
           f"(add `--match '*name*'` for one family).", "",
           f"{summary['models']} models, {summary['passed']} pass, {len(summary['failing'])} "
           f"fail. Kinds (models): "
           + ", ".join(f"{k} {n}" for k, n in sorted(summary["by_kind"].items())), ""]
    for kind in KINDS:
        groups: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for spec, failures in summary["failing"].items():
            for k, detail in failures:
                if k == kind:
                    groups[_normalise(detail)].append((spec, detail))
        if not groups:
            continue
        out += [f"## {kind} ({len({s for g in groups.values() for s, _ in g})} models)", ""]
        for _, members in sorted(groups.items(), key=lambda g: -len(g[1])):
            specs = list(dict.fromkeys(s for s, _ in members))
            out.append(f"- {len(specs)} models, e.g. `{members[0][1]}`")
            out.append(f"  - {', '.join(specs[:10])}{' …' if len(specs) > 10 else ''}")
        out.append("")
    codes: dict[str, list[str]] = defaultdict(list)
    for item in items:
        for severity, code, _layer, _message in item.get("diagnostics", []):
            if severity in ("warning", "info") and item["spec"] not in codes[code]:
                codes[code].append(item["spec"])
    out += ["## Diagnostics emitted (models per code; check for false positives)", ""]
    for code, specs in sorted(codes.items(), key=lambda c: -len(c[1])):
        out.append(f"- `{code}`: {len(specs)} models, e.g. {', '.join(specs[:8])}")
    small = [i["spec"] for i in items if i.get("global_context") and any(
        d[1] == "small-field" for d in i.get("diagnostics", []))]
    out += ["", f"- small-field on models the inspector itself marks global: {len(small)}"
            + (f", e.g. {', '.join(small[:8])}" if small else "")]
    out += ["", f"## Dispatch fallback ({len(summary['dispatch'])} models)", "",
            ", ".join(summary["dispatch"][:40]) + (" …" if len(summary["dispatch"]) > 40 else ""),
            ""]
    return "\n".join(out)
