"""The zoo runner's own logic (scripts/zoo): its oracles, the allow-list, resuming results.

The zoo itself needs timm and torchvision (``make zoo``); these parts run anywhere.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts" / "zoo"))

import zoo_checks as checks  # noqa: E402
import zoo_summary as summary  # noqa: E402
from zoo_pool import append_result, read_results  # noqa: E402


class _HalfUsed(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)
        self.unused = torch.nn.Linear(5, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class _Attend(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = x.flatten(2).transpose(1, 2)
        return torch.softmax(tokens @ tokens.transpose(1, 2), dim=-1) @ tokens


def test_oracle_counts_flops_and_used_parameters_by_hand() -> None:
    flops, used, attention = checks._oracle(_HalfUsed(), (3, 8, 8))
    assert flops == 2 * (4 * 6 * 6) * (3 * 3 * 3)  # 2 x outputs x taps
    assert used == 4 * 3 * 3 * 3 + 4  # the conv's weight and bias, not the Linear's 30
    assert not attention
    assert checks._oracle(_Attend(), (3, 4, 4))[2]


def test_check_passes_a_builtin_model_and_flags_what_it_should() -> None:
    result = checks.check("cifar_resnet20", field_check=False)
    assert result["failures"] == []
    assert result["macs"] == result["oracle_macs"] > 0
    assert result["attributed"] == result["used_params"] == result["params"]
    assert checks.check("no_such_model", field_check=False)["failures"][0][0] == "build"


def test_allowlist_needs_the_exact_error_and_a_reason(tmp_path: Path) -> None:
    path = tmp_path / "allow.json"
    path.write_text(json.dumps([{"spec": "timm:x", "kind": "exception", "error": "E: boom",
                                 "reason": "needs two inputs"}]))
    allowed = summary.load_allowlist(path)
    item = {"spec": "timm:x", "failures": [["exception", "E: boom"]]}
    assert summary.open_failures(item, allowed) == []
    other = {"spec": "timm:x", "failures": [["exception", "E: boom!"], ["macs", "1 vs 2"]]}
    assert summary.open_failures(other, allowed) == [["exception", "E: boom!"], ["macs", "1 vs 2"]]
    path.write_text(json.dumps([{"spec": "timm:x", "kind": "exception", "error": "E",
                                 "reason": " "}]))
    with pytest.raises(ValueError, match="reason"):
        summary.load_allowlist(path)


def test_results_resume_and_ignore_a_torn_line(tmp_path: Path) -> None:
    path = tmp_path / "results.jsonl"
    append_result(path, {"spec": "timm:a", "failures": [], "times": {"inspect": 0.5}})
    append_result(path, {"spec": "timm:b", "failures": [["macs", "1 vs 2"]], "times": {}})
    with path.open("a") as handle:
        handle.write('{"spec": "timm:c", "fail')  # a run killed mid-write
    done = read_results(path)
    assert sorted(done) == ["timm:a", "timm:b"]
    counts = summary.summarise(done.values(), {})
    assert (counts["models"], counts["passed"], counts["by_kind"]) == (2, 1, {"macs": 1})
    assert summary.failure_lines(counts) == ["FAIL timm:b [macs] 1 vs 2"]


def test_specs_file_selects_exactly_the_listed_models(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from zoo_catalog import Entry

    path = Path(__file__).resolve().parents[2] / "scripts" / "zoo" / "__main__.py"
    spec = importlib.util.spec_from_file_location("zoo_main", path)
    assert spec is not None and spec.loader is not None
    runner = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(runner)
    catalog = [Entry("timm:a"), Entry("timm:b", True), Entry("torchvision:c")]
    monkeypatch.setattr(runner, "zoo_entries", lambda only=None: list(catalog))
    listed = tmp_path / "specs.txt"
    listed.write_text("timm:b\n\n  torchvision:c  \ntimm:not-in-the-zoo\n")
    chosen = runner._select(runner._parse(["--specs", str(listed)]))
    assert [e.spec for e in chosen] == ["timm:b", "torchvision:c"]
    assert chosen[0].field_check
    with pytest.raises(SystemExit, match="--specs: cannot read"):
        runner._select(runner._parse(["--specs", str(tmp_path / "missing.txt")]))
