"""Golden files for table / JSON / CSV / Markdown, the PNG plot and the CLI."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from stridelab.cli import main
from stridelab.inspect import SCHEMA, SCHEMA_VERSION, inspect
from tests.inspect import models


@pytest.fixture(scope="module")
def report():  # type: ignore[no-untyped-def]
    return inspect(models.Functional(), (3, 32, 32))


def test_golden_table(report, golden) -> None:  # type: ignore[no-untyped-def]
    golden.check("inspect/functional_table.txt", report.to_table())
    golden.check("inspect/unet_table_depth1.txt",
                 inspect(models.UNet(), (3, 32, 32)).to_table(depth=1))


def test_golden_json(report, golden) -> None:  # type: ignore[no-untyped-def]
    text = report.to_json()
    golden.check("inspect/functional.json", text)
    data = json.loads(text)
    assert data["schema"] == SCHEMA and data["version"] == SCHEMA_VERSION
    assert data["totals"]["macs"] * 2 == data["totals"]["flops"]
    assert [layer["name"] for layer in data["layers"]] == [r.name for r in report.layers]
    assert data["layers"][1]["receptive_field"] == {"size": [3, 3], "stride": [2, 2],
                                                    "padding": [1, 1]}
    assert {d["code"] for d in data["diagnostics"]} >= {"misaligned", "aliasing"}


def test_golden_csv(report, golden) -> None:  # type: ignore[no-untyped-def]
    text = report.to_csv()
    golden.check("inspect/functional.csv", text)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == len(report.layers)
    assert sum(int(r["macs"]) for r in rows) == report.macs


def test_golden_markdown(report, golden) -> None:  # type: ignore[no-untyped-def]
    golden.check("inspect/functional.md", report.to_markdown())


def test_plot_writes_png(report, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = report.plot(tmp_path / "rf.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="png"):
        report.plot(tmp_path / "rf.jpg")


MODEL_FILE = """
from torch import nn
def build():
    return nn.Sequential(nn.Conv2d(3, 4, 7, 2, 3), nn.MaxPool2d(3, 2, 1))
"""


def test_cli_file_spec_json_and_plot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "net.py"
    spec.write_text(MODEL_FILE)
    plot = tmp_path / "rf.png"
    assert main(["inspect", f"{spec}:build", "--input", "3x64x64", "--json",
                 "--plot", str(plot)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["field"] == {"size": [11, 11], "stride": [4, 4], "padding": [5, 5]}
    assert plot.exists()


def test_cli_module_spec_table_csv_md(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", "tests.inspect.models:UNet", "--input", "3x32x32", "--depth", "1",
                 "--diagnose"]) == 0
    out = capsys.readouterr().out
    assert "enc1" in out and "MACs = FLOPs / 2" in out and "[info]" in out
    assert main(["inspect", "tests.inspect.models:UNet", "--input", "3x32x32", "--csv"]) == 0
    assert capsys.readouterr().out.startswith("name,op,inputs")
    assert main(["inspect", "tests.inspect.models:UNet", "--input", "3x32x32", "--md"]) == 0
    assert capsys.readouterr().out.startswith("## UNet")


@pytest.mark.parametrize("argv,needle", [
    (["inspect", "no_such_model"], "model"),
    (["inspect", "tests.inspect.models:nope"], "no attribute"),
    (["inspect", "missing_file.py:x"], "does not exist"),
    (["inspect", "tests.inspect.models:UNet", "--input", "3x0x4"], "--input"),
    (["inspect", "tests.inspect.models:UNet", "--input", "big"], "--input"),
    (["inspect", "tests.inspect.models:conv3x3"], "without arguments"),
    (["inspect", "tests.inspect.models:vgg16_features", "--input", "3x8x8"], "cannot trace"),
    (["inspect", "tests.inspect.models:UNet", "--depth", "0"], "--depth"),
])
def test_cli_errors_are_one_line_exit_2(argv: list[str], needle: str,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1 and "Traceback" not in err
