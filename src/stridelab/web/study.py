"""The study page's answers: the runs under the folder given with ``stridelab explore --runs``.

``--runs`` is either one study folder (``runs/<name>/`` holding ``results.json``) or a folder of
them (``runs/``). The table, highlights and plot titles are the study report's own
(:mod:`stridelab.study.report`), formatted from ``results.json`` alone. Only files directly inside
a run folder, with a plain name and a known extension, are ever served.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from stridelab.web.params import ParamError

SERVED_SUFFIXES = {".png": "image/png", ".md": "text/markdown; charset=utf-8",
                   ".json": "application/json", ".html": "text/html; charset=utf-8"}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class StudyFolder:
    """The runs this server shows (none when ``root`` is None)."""

    def __init__(self, root: str | Path | None) -> None:
        self.root = None if root is None else Path(root).resolve()

    def runs(self) -> dict[str, Path]:
        """Run name -> folder, for every folder holding a ``results.json``."""
        if self.root is None or not self.root.is_dir():
            return {}
        if (self.root / "results.json").is_file():
            return {self.root.name: self.root}
        return {child.name: child for child in sorted(self.root.iterdir())
                if child.is_dir() and _NAME.match(child.name)
                and (child / "results.json").is_file()}

    def folder(self, name: str) -> Path:
        runs = self.runs()
        if name not in runs:
            known = ", ".join(runs) or "none (start with --runs PATH)"
            raise ParamError("run", f"no run named {name!r}; runs: {known}")
        return runs[name]

    def file(self, name: str, filename: str) -> tuple[Path, str]:
        """A file of run ``name`` that may be served, with its media type."""
        folder = self.folder(name)
        suffix = Path(filename).suffix.lower()
        if not _NAME.match(filename) or suffix not in SERVED_SUFFIXES:
            raise ParamError("file", f"{filename!r} is not a plot or report file of the run")
        path = (folder / filename).resolve()
        if path.parent != folder or not path.is_file():
            raise ParamError("file", f"run {name!r} has no file {filename!r}")
        return path, SERVED_SUFFIXES[suffix]


def study_index(folder: StudyFolder) -> dict[str, Any]:
    return {"root": None if folder.root is None else str(folder.root),
            "runs": list(folder.runs())}


def run_answer(folder: StudyFolder, name: str) -> dict[str, Any]:
    """Table, highlights, plots and per-variant details of one run (from ``results.json``)."""
    from stridelab.study.report import COLUMNS, PLOT_TITLES, highlights, table_rows
    from stridelab.study.results import METRIC_UNITS

    path = folder.folder(name)
    try:
        results = json.loads((path / "results.json").read_text(encoding="utf-8"))
        rows = table_rows(results)
        lines = highlights(results)
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ParamError("run", f"{name}/results.json cannot be read as study results: "
                                f"{type(err).__name__}: {err}") from None
    plots = [{"file": p.name, "title": PLOT_TITLES.get(p.name, p.stem.replace("_", " "))}
             for p in sorted(path.glob("*.png"))]
    variants = [{"name": v["name"], "plan": v.get("plan"), "feature_sizes": v.get("feature_sizes"),
                 "static": v.get("static"), "pareto": bool(v.get("pareto")),
                 "seeds": len(v.get("seeds", []))} for v in results.get("variants", [])]
    reports = [p.name for p in (path / "report.md", path / "report.html") if p.is_file()]
    return {"name": name, "config": results.get("config", {}), "dataset": results.get("dataset"),
            "columns": list(COLUMNS), "rows": [list(r) for r in rows], "highlights": lines,
            "plots": plots, "variants": variants, "reports": reports, "units": METRIC_UNITS}
